import Foundation
import Tensors

/// The engine's one public face: what a notebook session holds. Models, data and results join
/// it as their issues land; for now it holds the seed and the session's bookkeeping.
public final class Session {
    public static let defaultSeed: UInt64 = 0

    /// The seed every random choice of the session derives from.
    public var seed: UInt64
    public let started: Date
    public let cancellation = CancellationToken()

    public init(seed: UInt64 = Session.defaultSeed) {
        self.seed = seed
        self.started = Date()
    }

    /// Forgets everything but the cancellation token and the start time.
    public func reset() {
        seed = Session.defaultSeed
    }

    /// The session's state as label/value pairs, for `status`.
    public func summary() -> [(String, String)] {
        [
            ("seed", String(seed)),
            ("model", "none"),
            ("data", "none"),
            ("uptime", String(format: "%.1f s", Date().timeIntervalSince(started))),
        ]
    }
}
