import Display
import Foundation
import Workbench

/// One progress bar for a long command: shown at the start, updated in place at most every
/// 100 ms, and closed as finished or interrupted.
final class LiveProgress {
    private let display: LiveDisplay
    private var bar: ProgressBar

    init(_ output: CommandOutput, title: String, total: Double, unit: String) {
        display = LiveDisplay(output, name: "progress", interval: 0.1)
        bar = ProgressBar(title: title, done: 0, total: total, unit: unit)
        display.show(force: true) { bar.bundle }
    }

    func update(done: Double, total: Double? = nil, note: String? = nil) {
        if let total { bar.total = total }
        bar.done = done
        bar.note = note ?? bar.note
        let elapsed = Date().timeIntervalSince(display.started)
        if elapsed > 0, done > 0 {
            bar.rate = done / elapsed
            bar.secondsLeft = display.secondsLeft(done: done, of: bar.total)
        }
        display.show { bar.bundle }
    }

    func finish(interrupted: Bool = false, failed: Bool = false, note: String? = nil) {
        bar.state = failed ? .failed : interrupted ? .interrupted : .finished
        if let note { bar.note = note }
        if !interrupted && !failed { bar.done = bar.total }
        let elapsed = Date().timeIntervalSince(display.started)
        if elapsed > 0, bar.done > 0 { bar.rate = bar.done / elapsed }
        display.show(force: true) { bar.bundle }
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
