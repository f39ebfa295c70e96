import Display
import Foundation
import Workbench

/// One progress display for a long command: shown at the start, updated in place at most every
/// 100 ms (so a fast loop does not flood the frontend), and closed as finished or interrupted.
final class LiveProgress {
    private let output: CommandOutput
    private let id = "progress-" + UUID().uuidString.lowercased()
    private let started = Date()
    private var lastUpdate = Date.distantPast
    private var bar: ProgressBar

    init(_ output: CommandOutput, title: String, total: Double, unit: String) {
        self.output = output
        bar = ProgressBar(title: title, done: 0, total: total, unit: unit)
        output.display(bar.bundle, id: id)
    }

    func update(done: Double, total: Double? = nil, note: String? = nil) {
        if let total { bar.total = total }
        bar.done = done
        bar.note = note ?? bar.note
        let elapsed = Date().timeIntervalSince(started)
        if elapsed > 0, done > 0 {
            bar.rate = done / elapsed
            bar.secondsLeft = (bar.total - done) / (done / elapsed)
        }
        guard Date().timeIntervalSince(lastUpdate) >= 0.1 else { return }
        lastUpdate = Date()
        output.update(bar.bundle, id: id)
    }

    func finish(interrupted: Bool = false, failed: Bool = false, note: String? = nil) {
        bar.state = failed ? .failed : interrupted ? .interrupted : .finished
        if let note { bar.note = note }
        if !interrupted && !failed { bar.done = bar.total }
        let elapsed = Date().timeIntervalSince(started)
        if elapsed > 0, bar.done > 0 { bar.rate = bar.done / elapsed }
        output.update(bar.bundle, id: id)
    }

    /// Runs `body`, closing the bar as interrupted (or failed, for any other error) if it throws.
    func run<T>(_ body: () throws -> T) rethrows -> T {
        do {
            let value = try body()
            return value
        } catch let error as CancellationError {
            finish(interrupted: true)
            throw error
        } catch {
            finish(failed: true)
            throw error
        }
    }
}
