import Foundation

/// A progress bar with counts, rate and time left, as text and HTML. Shown once and then
/// updated in place under one display id while the work runs.
public struct ProgressBar: Equatable, Sendable {
    public var title: String
    public var done: Double
    public var total: Double
    public var unit: String
    /// Units per second, when known.
    public var rate: Double?
    public var secondsLeft: Double?
    /// A short status after the figures, e.g. "loss 3.21".
    public var note: String?
    public var state: State

    public enum State: Equatable, Sendable { case running, finished, interrupted, failed }

    public init(title: String, done: Double, total: Double, unit: String, rate: Double? = nil,
                secondsLeft: Double? = nil, note: String? = nil, state: State = .running) {
        self.title = title
        self.done = done
        self.total = total
        self.unit = unit
        self.rate = rate
        self.secondsLeft = secondsLeft
        self.note = note
        self.state = state
    }

    public var fraction: Double { total > 0 ? min(1, max(0, done / total)) : 0 }

    /// Percent, counts, rate, time left or final state, and the note: the bar without its bar,
    /// for a chart's subtitle.
    public var figures: String {
        var parts = ["\(Int(fraction * 100))%", "\(ProgressBar.count(done))/\(ProgressBar.count(total)) \(unit)"]
        if let rate, rate.isFinite, rate > 0 { parts.append(String(format: rate >= 100 ? "%.0f %@/s" : "%.1f %@/s", rate, unit)) }
        switch state {
        case .running: if let secondsLeft, secondsLeft.isFinite { parts.append(ProgressBar.duration(secondsLeft) + " left") }
        case .finished: parts.append("done")
        case .interrupted: parts.append("interrupted")
        case .failed: parts.append("failed")
        }
        if let note { parts.append(note) }
        return parts.joined(separator: " · ")
    }

    public var plainText: String {
        let width = 30
        let filled = Int((fraction * Double(width)).rounded(.down))
        return "\(title) [" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] " + figures
    }

    public var html: String {
        let colour = state == .interrupted || state == .failed ? "#c0392b" : state == .finished ? "#2e7d32" : "#1f6feb"
        return """
        <div class="sculpt-progress" style="font-family:monospace;font-size:12px">\
        <span>\(htmlEscaped(title))</span> \
        <span style="display:inline-block;width:240px;height:10px;background:#e5e7eb;border-radius:3px;vertical-align:middle">\
        <span style="display:block;width:\(String(format: "%.1f", fraction * 100))%;height:100%;background:\(colour);border-radius:3px"></span></span> \
        <span>\(htmlEscaped(figures))</span></div>
        """
    }

    public var bundle: MimeBundle {
        MimeBundle(plain: plainText).adding("text/html", .text(html))
    }

    static func count(_ x: Double) -> String {
        x == x.rounded() ? String(Int(x)) : String(format: "%.1f", x)
    }

    static func duration(_ seconds: Double) -> String {
        if seconds < 60 { return "\(Int(seconds.rounded(.up))) s" }
        if seconds < 3600 { return "\(Int(seconds / 60)) min \(Int(seconds.truncatingRemainder(dividingBy: 60))) s" }
        return "\(Int(seconds / 3600)) h \(Int(seconds.truncatingRemainder(dividingBy: 3600) / 60)) min"
    }
}
