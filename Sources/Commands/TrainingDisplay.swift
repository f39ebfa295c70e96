import Compression
import Display
import Foundation
import Workbench

extension CommandTable {
    /// `train`: runs the session's training job behind one display that shows progress and the
    /// loss curve, updated in place (at most every 250 ms, and at every validation).
    static func runTraining(_ arguments: Arguments, _ context: CommandContext) throws -> MimeBundle? {
        var p = Training.Parameters(steps: arguments.integer("steps")!)
        p.learningRate = Float(arguments.number("lr")!)
        p.batch = arguments.integer("batch")!
        p.seq = arguments.integer("seq")!
        p.warmup = arguments.integer("warmup")!
        p.accumulate = arguments.integer("accumulate")!
        p.evalEvery = arguments.integer("eval_every")!
        p.validationBatches = arguments.integer("val_batches")!
        p.weightDecay = Float(arguments.number("weight_decay")!)
        p.clip = Float(arguments.number("clip")!)
        p.distillation = arguments.flag("distill")!
        let session = context.session
        let display = LiveDisplay(context.output, name: "training")
        let firstStep = (session.trainingHistory.last?.step ?? 0) + 1
        let lastStep = firstStep + p.steps - 1

        func draw(_ state: ProgressBar.State) -> MimeBundle {
            let done = Double((session.trainingHistory.last?.step ?? firstStep - 1) - firstStep + 1)
            let rate = session.trainingHistory.last?.tokensPerSecond
            var bar = ProgressBar(title: "training", done: done, total: Double(p.steps), unit: "steps", state: state)
            bar.secondsLeft = display.secondsLeft(done: done, of: Double(p.steps))
            let recent = session.trainingHistory.suffix(10).map(\.trainLoss).filter(\.isFinite)
            var notes = [String]()
            if let rate { notes.append(String(format: "%.0f tokens/s", rate)) }
            if !recent.isEmpty { notes.append(String(format: "train %.3f", recent.reduce(0, +) / Double(recent.count))) }
            // The latest validation loss with the step it was measured at: after an interrupt it
            // may be the start-of-run figure, and must not read as the end-of-run one.
            if let last = session.trainingHistory.last(where: { $0.validationLoss != nil }), let v = last.validationLoss {
                notes.append(String(format: "val %.3f at step %d", v, last.step))
            }
            bar.note = notes.joined(separator: " · ")
            var chart = LineChart(
                title: "LoRA training — step \(Int(done) + firstStep - 1)/\(lastStep)",
                xTitle: "step", yTitle: "loss (nats per token)",
                series: [
                    .init(name: "train", points: session.trainingHistory.map { (Double($0.step), $0.trainLoss) }, colour: "#1f6feb"),
                    .init(name: "validation", points: session.trainingHistory.compactMap { e in e.validationLoss.map { (Double(e.step), $0) } }, colour: "#d9480f"),
                ])
            chart.subtitle = bar.figures
            return chart.bundle(plain: bar.plainText)
        }
        func show(_ state: ProgressBar.State, force: Bool = true) { display.show(force: force) { draw(state) } }

        let sampler = SubnetSampler(rawValue: arguments.text("sampler")!)!
        show(.running)
        do {
            let result = try session.train(p, split: arguments.text("split"), validationSplit: arguments.text("val_split"), sampler: sampler) { event in
                show(.running, force: event.validationLoss != nil)
            }
            show(result.interrupted ? .interrupted : .finished)
            if result.interrupted { throw CancellationError() }
            guard let last = result.events.last else { return nil }
            let seconds = result.seconds
            let rows: [[String]] = [
                ["steps", "\(result.events.count) (total trained: \(last.step))"],
                ["tokens per step", "\(p.batch * p.seq * p.accumulate) (batch \(p.batch) × seq \(p.seq) × accumulate \(p.accumulate))"
                    + (sampler == .sandwich ? ", each through 3 subnets" : "")
                    + (p.distillation ? "; the largest learns from the labels, the others from its predictions" : "")],
                ["train loss (last 10 steps)", String(format: "%.4f", result.events.suffix(10).map(\.trainLoss).reduce(0, +) / Double(min(10, result.events.count)))],
                ["validation loss", result.finalValidationLoss.map { String(format: "%.4f (perplexity %.2f)", $0, exp($0)) } ?? "no validation split"],
                ["time", String(format: "%.1f s, %.2f s per step, %.0f tokens/s (measured)", seconds, seconds / Double(result.events.count), last.tokensPerSecond)],
            ]
            return Table(title: "Training done", columns: ["", "value"], rows: rows).bundle
        } catch let error as CancellationError {
            show(.interrupted)
            throw error
        } catch {
            // Bad input found once the run started (a text too short for its windows): the
            // display says so rather than staying at "running".
            show(.failed)
            throw error
        }
    }
}
