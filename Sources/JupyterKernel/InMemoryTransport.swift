import Foundation

/// A transport without sockets, for tests: a client pushes frames in with `deliver` and reads
/// what the kernel sent with `waitForMessage`. Thread-safe on both sides.
public final class InMemoryTransport: KernelTransport {
    private let condition = NSCondition()
    private var incoming = [TransportEvent]()
    private var outgoing = [Channel: [[Data]]]()
    /// Every message the kernel sent, in send order across channels.
    public private(set) var sendLog = [(channel: Channel, frames: [Data])]()
    private var woken = false
    public private(set) var isClosed = false

    public init() {}

    /// A client sends a message on shell, control or stdin.
    public func deliver(_ frames: [Data], on channel: Channel) {
        condition.lock()
        incoming.append(.message(channel, frames))
        condition.broadcast()
        condition.unlock()
    }

    /// A client subscribes to iopub.
    public func subscribe(topic: Data = Data()) {
        condition.lock()
        incoming.append(.subscribed(topic: topic))
        condition.broadcast()
        condition.unlock()
    }

    /// Takes the oldest message the kernel sent on `channel`, waiting up to `timeout` seconds.
    public func waitForMessage(on channel: Channel, timeout: TimeInterval = 5) -> [Data]? {
        let deadline = Date().addingTimeInterval(timeout)
        condition.lock()
        defer { condition.unlock() }
        while outgoing[channel, default: []].isEmpty {
            if !condition.wait(until: deadline) { return nil }
        }
        return outgoing[channel]!.removeFirst()
    }

    /// Waits until the kernel closed the transport.
    public func waitUntilClosed(timeout: TimeInterval = 5) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        condition.lock()
        defer { condition.unlock() }
        while !isClosed {
            if !condition.wait(until: deadline) { return false }
        }
        return true
    }

    /// A snapshot of everything sent so far.
    public func sentSoFar() -> [(channel: Channel, frames: [Data])] {
        condition.lock()
        defer { condition.unlock() }
        return sendLog
    }

    public func poll(timeout: TimeInterval?) throws -> [TransportEvent] {
        condition.lock()
        defer { condition.unlock() }
        let deadline = timeout.map { Date().addingTimeInterval($0) } ?? .distantFuture
        while incoming.isEmpty && !woken {
            if !condition.wait(until: deadline) { break }
        }
        woken = false
        let events = incoming
        incoming.removeAll()
        return events
    }

    public func send(_ frames: [Data], on channel: Channel) throws {
        condition.lock()
        outgoing[channel, default: []].append(frames)
        sendLog.append((channel, frames))
        condition.broadcast()
        condition.unlock()
    }

    public func wake() {
        condition.lock()
        woken = true
        condition.broadcast()
        condition.unlock()
    }

    public func close() {
        condition.lock()
        isClosed = true
        condition.broadcast()
        condition.unlock()
    }
}
