import Foundation

/// The five Jupyter channels.
public enum Channel: String, CaseIterable, Sendable {
    case shell, control, stdin, iopub, heartbeat
}

/// What a transport hands to the kernel's main loop.
public enum TransportEvent: Sendable {
    /// A multipart message on shell, control or stdin.
    case message(Channel, [Data])
    /// A client subscribed to iopub (XPUB subscription with this topic).
    case subscribed(topic: Data)
}

/// Moves frames between the kernel's main loop and its clients. The main loop is the only
/// caller of `poll` and `send`; `wake` may be called from any thread.
public protocol KernelTransport: AnyObject {
    /// Waits up to `timeout` seconds (nil: forever) for incoming events or a wake-up.
    func poll(timeout: TimeInterval?) throws -> [TransportEvent]
    /// Sends one multipart message on a channel.
    func send(_ frames: [Data], on channel: Channel) throws
    /// Interrupts a waiting `poll` so the main loop drains its outbox. Thread-safe.
    func wake()
    /// Flushes and releases everything.
    func close()
}
