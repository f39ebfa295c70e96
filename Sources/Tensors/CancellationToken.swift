import Foundation

/// Thrown by engine loops that saw their token cancelled. What finished before stays.
public struct CancellationError: Error, CustomStringConvertible {
    public init() {}
    public var description: String { "interrupted" }
}

/// A flag the kernel sets (interrupt_request, SIGINT) and long engine loops check between steps.
public final class CancellationToken: @unchecked Sendable {
    private let lock = NSLock()
    private var cancelled = false

    public init() {}

    public var isCancelled: Bool {
        lock.lock()
        defer { lock.unlock() }
        return cancelled
    }

    public func cancel() {
        lock.lock()
        cancelled = true
        lock.unlock()
    }

    /// Clears the flag before the next piece of work starts.
    public func reset() {
        lock.lock()
        cancelled = false
        lock.unlock()
    }

    /// Throws `CancellationError` when cancelled: the checkpoint engine loops call.
    public func check() throws {
        if isCancelled { throw CancellationError() }
    }

    /// Waits up to `seconds`, waking every 10 ms to check the flag.
    public func sleep(seconds: Double) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            try check()
            Thread.sleep(forTimeInterval: min(0.01, max(0, deadline.timeIntervalSinceNow)))
        }
        try check()
    }
}
