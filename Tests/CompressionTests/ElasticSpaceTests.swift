@testable import Compression
import Foundation
import Tensors
import Transformer
import XCTest

final class ElasticSpaceTests: XCTestCase {
    let config = try! LlamaConfiguration(layers: 3, dim: 32, ffnDim: 64, heads: 4, kvHeads: 2, vocabSize: 256, contextLength: 64)

    func testHeuristicIsTheMidpointOfEachDescendingList() {
        let odd = ElasticSpace(config: config, mode: .b, rankChoices: [16, 32, 24], widthFractions: [1, 0.875, 0.75, 0.625, 0.5],
                               grouping: .layer, targets: [.q, .up])
        XCTAssertEqual(odd.groups.count, 6)
        XCTAssertEqual(odd.groups[0].choices, [32, 24, 16])
        XCTAssertEqual(odd.groups[1].choices, [64, 56, 48, 40, 32])
        XCTAssertEqual(odd.resolve(odd.heuristic).widths, [48, 48, 48])
        XCTAssertEqual(odd.resolve(odd.heuristic).ranks[0][.q], 24)
        // Even-length lists round to the larger value: [32, 28] → 32.
        let even = ElasticSpace(config: config, mode: .a, rankChoices: [32, 28], widthFractions: [], grouping: .module, targets: [.q, .v])
        XCTAssertEqual(even.resolve(even.heuristic).ranks[2][.v], 32)
        XCTAssertEqual(even.subnetCount, pow(2, 6))
        XCTAssertEqual(ElasticSpace(config: config, mode: .a, rankChoices: [8], widthFractions: [], grouping: .family,
                                    targets: [.q, .k, .gate, .down]).groups.count, 6, "attention and MLP families per layer")
    }

    func testCostMatchesTheModelAndShrinksWithTheSubnet() throws {
        let model = LlamaModel.random(config: config, seed: 1)
        let lora = try LoRASet(model: model, configuration: LoRAConfiguration(rank: 8, alpha: 16, targets: [.q, .v, .up, .down]), seed: 1)
        let space = ElasticSpace(config: config, mode: .b, rankChoices: [8, 4], widthFractions: [1, 0.5], grouping: .layer, targets: [.q, .v, .up, .down])
        let full = space.cost(space.maximal)
        XCTAssertEqual(full.parameters, model.parameterCount + lora.parameterCount)
        XCTAssertEqual(full.adapterParameters, lora.parameterCount)
        let small = space.cost(space.minimal)
        // Half the MLP: 3·32·32 fewer frozen weights per layer; rank 4 adapters on narrower shapes.
        XCTAssertEqual(full.parameters - small.parameters - (full.adapterParameters - small.adapterParameters), 3 * 3 * 32 * 32)
        XCTAssertLessThan(small.macsPerToken, full.macsPerToken)
        space.apply(space.minimal, model: model, adapters: lora)
        XCTAssertEqual(model.activeShape.mlpWidths, [32, 32, 32])
        XCTAssertEqual(lora.adapters[1][.q]?.activeRank, 4)
        XCTAssertEqual(space.uniform(rank: 7, widthFraction: 0.9), space.groups.map { _ in 0 }, "nearest choices: rank 8, width 100%")
    }

    func testSuperNetworkTrainingImprovesSubnetsItNeverSawWhole() throws {
        let model = LlamaModel.random(config: config, seed: 2)
        let lora = try LoRASet(model: model, configuration: LoRAConfiguration(rank: 8, alpha: 16, targets: [.q, .k, .v, .gate, .up, .down]), seed: 2)
        let space = ElasticSpace(config: config, mode: .b, rankChoices: [8, 6, 4], widthFractions: [1, 0.75, 0.5], grouping: .family,
                                 targets: [.q, .k, .v, .gate, .up, .down])
        let text = String(repeating: "Emma Woodhouse, handsome, clever, and rich, with a comfortable home and happy disposition. ", count: 60)
        let data = TextWindows(model.tokenizer.encode(text))
        func loss(_ genome: [Int]) -> Double {
            space.apply(genome, model: model, adapters: lora)
            return Training.validationLoss(model: model, data: data, batch: 4, seq: 32, batches: 4)
        }
        let before = loss(space.heuristic)
        var p = Training.Parameters(steps: 80)
        p.learningRate = 1e-2
        p.batch = 4
        p.seq = 32
        var sampled = Set<[Int]>()
        _ = Training.run(model: model, adapters: lora, train: data, validation: nil, parameters: p,
                         sampleSubnets: { rng in
                             let genome = space.random(&rng)
                             sampled.insert(genome)
                             return [{ space.apply(genome, model: model, adapters: lora) }]
                         }, validationSubnet: { space.apply(space.maximal, model: model, adapters: lora) })
        XCTAssertGreaterThan(sampled.count, 60, "one random subnet per step")
        XCTAssertEqual(model.activeShape.mlpWidths, [64, 64, 64], "the validation subnet is left active")
        let after = loss(space.heuristic)
        XCTAssertLessThan(after, before - 0.5, "heuristic subnet \(before) → \(after)")
    }

    /// The sandwich rule trains the largest, the smallest and one random subnet; the step's
    /// gradient is their mean, so three passes through the same subnet make the same step as one.
    func testSandwichStepsAverageTheirSubnets() throws {
        let space = ElasticSpace(config: config, mode: .b, rankChoices: [8, 4], widthFractions: [1, 0.5], grouping: .layer, targets: [.q, .up])
        var rng = SeededGenerator(seed: 1)
        let genomes = SubnetSampler.sandwich.genomes(space, &rng)
        XCTAssertEqual(genomes.count, 3)
        XCTAssertEqual(genomes[0], space.maximal)
        XCTAssertEqual(genomes[1], space.minimal)
        XCTAssertTrue(space.isValid(genomes[2]))
        XCTAssertEqual(SubnetSampler.uniform.genomes(space, &rng).count, 1)
        // InstaTune: the full network on even steps, one random subnet on odd ones.
        XCTAssertEqual(SubnetSampler.instatune.genomes(space, &rng, step: 4), [space.maximal])
        let odd = (0..<8).map { SubnetSampler.instatune.genomes(space, &rng, step: 2 * $0 + 1) }
        XCTAssertTrue(odd.allSatisfy { $0.count == 1 && space.isValid($0[0]) })
        XCTAssertTrue(odd.contains { $0[0] != space.maximal }, "odd steps draw random subnets")

        let data = TextWindows((0..<400).map { Int32(($0 * 41 + 7) % 256) })
        var p = Training.Parameters(steps: 2)
        p.learningRate = 1e-2
        p.batch = 2
        p.seq = 16
        func trainedB(passes: Int) throws -> [Float] {
            let model = LlamaModel.random(config: config, seed: 5)
            let lora = try LoRASet(model: model, configuration: LoRAConfiguration(rank: 4, alpha: 8, targets: [.q, .up]), seed: 6)
            _ = Training.run(model: model, adapters: lora, train: data, validation: nil, parameters: p,
                             sampleSubnets: { _ in Array(repeating: {}, count: passes) })
            return lora.ordered.flatMap { $0.adapter.b.array }
        }
        let once = try trainedB(passes: 1), thrice = try trainedB(passes: 3)
        XCTAssertNotEqual(once, [Float](repeating: 0, count: once.count), "the step moved B")
        XCTAssertLessThan(zip(once, thrice).map { abs($0 - $1) }.max()!, 1e-5)
    }

    /// Mode NAS adds a kept/skipped gene to every layer but the first and last: the heuristic keeps
    /// every layer, a skipped layer costs nothing (its weights and adapters), applying a genome
    /// skips it in the model, and the subnet computes as the model with that block adding nothing.
    func testNASSpaceSkipsLayersAndTheirCost() throws {
        let model = LlamaModel.random(config: config, seed: 2)
        let lora = try LoRASet(model: model, configuration: LoRAConfiguration(rank: 8, alpha: 16, targets: [.q, .up]), seed: 1)
        let space = ElasticSpace(config: config, mode: .nas, rankChoices: [8, 4], widthFractions: [1, 0.5], grouping: .layer, targets: [.q, .up])
        let depthGenes = space.groups.indices.filter { if case .depth = space.groups[$0].kind { return true } else { return false } }
        XCTAssertEqual(depthGenes.map { space.groups[$0].name }, ["layer 1 kept"], "the first and last layers are pinned")
        XCTAssertEqual(space.kept(space.heuristic), [true, true, true])
        XCTAssertEqual(space.kept(space.minimal), [true, false, true])
        XCTAssertEqual(space.canonical(space.minimal), space.minimal.enumerated().map { i, gene in
            if case .depth = space.groups[i].kind { return gene }
            if case .rank(1, _) = space.groups[i].kind { return 0 }
            if case .width(1) = space.groups[i].kind { return 0 }
            return gene
        }, "a skipped layer's rank and width do nothing")
        var skipMiddle = space.maximal
        skipMiddle[depthGenes[0]] = 1
        let full = space.cost(space.maximal), skipped = space.cost(skipMiddle)
        let layerWeights = 2 * 32 * 32 + 2 * 16 * 32 + 3 * 32 * 64 + 2 * 32
        let layerAdapters = 8 * (32 + 32) + 8 * (32 + 64)
        XCTAssertEqual(full.parameters - skipped.parameters, layerWeights + layerAdapters)
        XCTAssertEqual(full.macsPerToken - skipped.macsPerToken, layerWeights - 2 * 32 + layerAdapters)

        let tokens: [Int32] = [9, 70, 130, 4, 220]
        space.apply(skipMiddle, model: model, adapters: lora)
        XCTAssertEqual(model.activeShape.layers.map(\.kept), [true, false, true])
        let subnet = model.forward(tokens: tokens, batch: 1, seq: tokens.count, logits: .all).array
        let zeroed = LlamaModel.random(config: config, seed: 2)
        zeroed.layers[1].wo.zero()
        zeroed.layers[1].wDown.zero()
        let reference = zeroed.forward(tokens: tokens, batch: 1, seq: tokens.count, logits: .all).array
        XCTAssertLessThan(zip(subnet, reference).map { abs($0 - $1) }.max()!, 1e-4, "fresh adapters add nothing; the skipped block adds nothing")
        space.apply(space.maximal, model: model, adapters: lora)
        XCTAssertEqual(model.activeShape.layers.map(\.kept), [true, true, true])
    }
}
