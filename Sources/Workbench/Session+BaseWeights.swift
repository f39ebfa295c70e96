import Compression
import Evaluation
import Foundation
import Tensors
import Transformer

/// What a method that calibrates asks for: `windows` × `length` tokens of a split.
public struct CalibrationRequest: Sendable {
    public var split: String?
    public var windows: Int
    public var length: Int

    public init(split: String?, windows: Int, length: Int) {
        self.split = split
        self.windows = windows
        self.length = length
    }
}

/// How an edit of the base weights went, for the method's own result and recipe entry.
struct BaseEditRun {
    var windows: [[Int32]]
    /// The calibration split's name ("" without calibration).
    var split: String
    var interrupted: Bool
    var seconds: Double

    var calibrationTokens: Int { windows.reduce(0) { $0 + $1.count } }
}

extension Session {
    /// The one path of a block-wise edit of the base weights (`sparsify`, `quantize`; the next
    /// method too). In order: the checks (`what` names the edit in their messages), the
    /// calibration windows, merged adapters made the base, the restore point, then `edit` (the
    /// method's walk over the blocks, `BlockwiseEdit`) on the windows. An interrupt keeps the
    /// whole blocks done; grids made or changed get their packed form after, also on an error.
    /// Should nothing be edited (`edited` says), merged adapters are left merged and undoable,
    /// as they were. The caller records the recipe entry from what it returns.
    func editBaseWeights(_ what: String, calibration: CalibrationRequest?, edited: () -> Bool,
                         _ edit: (LlamaModel, [[Int32]]) throws -> Void) throws -> BaseEditRun {
        let model = try requireModel()
        try requireUniformWidths(model, for: what)
        try requireNoConstrainedAdapters(for: what)
        var windows = [[Int32]]()
        var splitName = ""
        if let calibration {
            guard calibration.length <= model.config.contextLength else {
                throw WorkbenchError.invalid("calibration_len=\(calibration.length) exceeds the model's context of \(model.config.contextLength) tokens")
            }
            splitName = try calibrationSplitName(calibration.split)
            windows = try calibrationWindows(split: splitName, windows: calibration.windows, length: calibration.length)
        }
        // Everything that can refuse is asked before the merge becomes the base.
        try BaseWeights.checkRoomForACopy(of: model)
        let beforeAdoption = (lora, elastic, activeGenome, trainingHistory, base, recipe)
        let started = Date()
        var interrupted = false
        defer {
            model.packQuantizedGrids()
            let packed = ModelQuantization.packedBytes(model)
            modelCard?.packed = packed.projections > 0 ? packed : nil
            if !edited(), let adopted = beforeAdoption.0, adopted.isMerged, lora == nil {
                // Released adapters go back on, merged: they add nothing again, and unmerge applies.
                adopted.reattach(to: model, merged: true)
                (lora, elastic, activeGenome, trainingHistory, base, recipe) = beforeAdoption
            }
        }
        adoptMergedAdapters(model)
        try base.keepBeforeEdits(model)
        do {
            try edit(model, windows)
        } catch is CancellationError {
            interrupted = true
        }
        return BaseEditRun(windows: windows, split: splitName, interrupted: interrupted, seconds: Date().timeIntervalSince(started))
    }

    /// Merged adapters become the base: they come off the model with their update left in the
    /// weights, and the session forgets them (training, the elastic space, its subnet). An
    /// elastic subnet's MLP widths stay active: they are what the merged model computes with.
    /// Recorded in the recipe; a no-op unless adapters are merged.
    func adoptMergedAdapters(_ model: LlamaModel) {
        guard let lora, lora.isMerged else { return }
        lora.release(from: model)
        base.adoptMerge()
        self.lora = nil
        elastic = nil
        activeGenome = nil
        trainingHistory = []
        let narrowed = model.activeShape != model.fullShape
            ? "; the merged subnet's MLP widths " + Set(model.activeShape.mlpWidths).sorted().map(String.init).joined(separator: "/") + " stay" : ""
        record("merged weights became the base", "\(lora.ordered.count) adapters folded in for good (`lora unmerge` no longer applies)" + narrowed)
    }

    /// Puts back the weights as they were before the first `sparsify` or `quantize` of this
    /// base. Refused when the MLP channels were reordered since (the copy is in the old order)
    /// or adapters are merged (the copy does not hold their update).
    public func restoreDense() throws {
        let model = try requireModel()
        guard base.beforeEdits != nil else { throw WorkbenchError.invalid("the weights were never pruned or quantized: nothing to restore") }
        if let lora, lora.isMerged {
            throw WorkbenchError.invalid("the adapters are merged into the weights, and the dense copy predates them: `lora unmerge` first")
        }
        try requireNoConstrainedAdapters(for: "restoring the dense weights")
        try base.restore(model)
        modelCard?.packed = nil
        record("restored dense weights", "")
    }

    /// The calibration text: the one named, else Emma for Austen, else the corpus's first split.
    func calibrationSplitName(_ given: String?) throws -> String {
        guard let corpus else { throw WorkbenchError.noData }
        return given ?? (corpus.isAusten ? "emma" : corpus.splits[0].name)
    }

    /// The first `windows × length` tokens of `split`, tokenized as a whole without BOS, as
    /// consecutive windows: the calibration sequences of Wanda, GPTQ and sensitivity.
    public func calibrationWindows(split: String, windows: Int, length: Int) throws -> [[Int32]] {
        let model = try requireModel()
        var all = try tokens(split: split)
        if model.tokenizer.addBOS, let bos = model.tokenizer.bosID, all.first == bos { all.removeFirst() }
        guard all.count >= windows * length else { throw WorkbenchError.notEnoughTokens(have: all.count, need: windows * length) }
        return (0..<windows).map { Array(all[($0 * length)..<(($0 + 1) * length)]) }
    }

    /// "3", "0–11" or "0,2,5": the layers an edit reached, for the recipe.
    func layerList(_ layers: [Int]) -> String {
        guard let first = layers.first, let last = layers.last else { return "none" }
        return layers == Array(first...last) ? (first == last ? "\(first)" : "\(first)–\(last)") : layers.map(String.init).joined(separator: ",")
    }
}
