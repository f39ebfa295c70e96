import Display
import Foundation

/// One output of a long command that changes in place: the first `show` displays it under an id of
/// its own, later ones replace it. Between forced calls (a start, a final state, a validation point)
/// it redraws at most every `interval`, so a fast loop does not flood the frontend; the first update
/// after the display goes out at once (the start is not throttled against); `draw` runs only when
/// something is sent. A command describes what to draw and when it must show; this owns the
/// id, the throttle and the display-or-update choice.
final class LiveDisplay {
    private let output: CommandOutput
    private let id: String
    private let interval: TimeInterval
    private var shown = false
    private var lastShown = Date.distantPast
    /// When the display was made: what `countdown` measures from.
    let started = Date()

    init(_ output: CommandOutput, name: String, interval: TimeInterval = 0.25) {
        self.output = output
        id = name + "-" + UUID().uuidString.lowercased()
        self.interval = interval
    }

    /// Whether anything has been shown yet.
    var isShown: Bool { shown }

    func show(force: Bool = false, _ draw: () -> MimeBundle) {
        guard force || Date().timeIntervalSince(lastShown) >= interval else { return }
        let bundle = draw()
        if shown {
            lastShown = Date()
            output.update(bundle, id: id)
        } else {
            output.display(bundle, id: id)
            shown = true
        }
    }

    /// "3/30 blocks, about 12 s left": the count, and the time left at the pace so far.
    func countdown(done: Int, of total: Int, unit: String) -> String {
        let elapsed = Date().timeIntervalSince(started)
        let left = done == 0 || done >= total ? "" : String(format: ", about %.0f s left", elapsed / Double(done) * Double(total - done))
        return "\(done)/\(total) \(unit)" + left
    }

    /// Seconds left at the pace so far, for a progress bar (nil before the first unit is done).
    func secondsLeft(done: Double, of total: Double) -> Double? {
        done > 0 ? Date().timeIntervalSince(started) / done * (total - done) : nil
    }
}
