import Foundation
import JupyterProtocol

/// The output sink of one execute request: publishes on iopub with that request as parent.
/// Stream text is batched and sent after about 100 ms, or at once past 8 KiB, as ipykernel does;
/// any other output flushes it first, so the order the command produced is the order seen.
final class ExecutionOutput: OutputSink {
    static let flushInterval: TimeInterval = 0.1
    static let flushBytes = 8 * 1024

    private let outbox: Outbox
    private let request: Message
    private let allowStdin: Bool
    private let inputBroker: InputBroker
    private let lock = NSLock()
    private var pendingText = ""
    private var pendingIsStderr = false
    private var flushScheduled = false
    private let timerQueue: DispatchQueue

    init(outbox: Outbox, request: Message, allowStdin: Bool, inputBroker: InputBroker, timerQueue: DispatchQueue) {
        self.outbox = outbox
        self.request = request
        self.allowStdin = allowStdin
        self.inputBroker = inputBroker
        self.timerQueue = timerQueue
    }

    func stream(_ text: String, toStderr: Bool) {
        guard !text.isEmpty else { return }
        lock.lock()
        defer { lock.unlock() }
        if !pendingText.isEmpty && pendingIsStderr != toStderr { flushLocked() }
        pendingIsStderr = toStderr
        pendingText += text
        if pendingText.utf8.count >= ExecutionOutput.flushBytes {
            flushLocked()
        } else if !flushScheduled {
            flushScheduled = true
            timerQueue.asyncAfter(deadline: .now() + ExecutionOutput.flushInterval) { [weak self] in
                self?.flush()
            }
        }
    }

    func display(_ data: DisplayData, displayID: String?) {
        var content = Self.bundle(data)
        if let displayID { content["transient"] = ["display_id": .string(displayID)] }
        publishInOrder("display_data", content: content)
    }

    func updateDisplay(_ data: DisplayData, displayID: String) {
        var content = Self.bundle(data)
        content["transient"] = ["display_id": .string(displayID)]
        publishInOrder("update_display_data", content: content)
    }

    func clearOutput(wait: Bool) {
        publishInOrder("clear_output", content: ["wait": .bool(wait)])
    }

    func input(prompt: String, password: Bool) throws -> String {
        guard allowStdin else { throw InputError.notAllowed }
        flush()
        return try inputBroker.request(prompt: prompt, password: password, parent: request, outbox: outbox)
    }

    /// Sends pending stream text now.
    func flush() {
        lock.lock()
        flushLocked()
        lock.unlock()
    }

    func publishInOrder(_ msgType: String, content: JSONValue) {
        lock.lock()
        flushLocked()
        outbox.publish(msgType, content: content, parent: request)
        lock.unlock()
    }

    private func flushLocked() {
        flushScheduled = false
        guard !pendingText.isEmpty else { return }
        outbox.publish("stream", content: ["name": .string(pendingIsStderr ? "stderr" : "stdout"),
                                           "text": .string(pendingText)], parent: request)
        pendingText = ""
    }

    static func bundle(_ data: DisplayData) -> JSONValue {
        ["data": .object(data.data), "metadata": .object(data.metadata)]
    }
}

/// Carries one input_request to the frontend and its input_reply back to the waiting worker.
final class InputBroker {
    private let condition = NSCondition()
    private var reply: String?
    private var waiting = false
    private var cancelled = false

    func request(prompt: String, password: Bool, parent: Message, outbox: Outbox) throws -> String {
        condition.lock()
        waiting = true
        reply = nil
        cancelled = false
        condition.unlock()
        // Same routing identity as the execute request: the client's stdin DEALER shares it.
        outbox.send("input_request", content: ["prompt": .string(prompt), "password": .bool(password)],
                    on: .stdin, parent: parent, identities: parent.identities)
        condition.lock()
        defer { waiting = false; condition.unlock() }
        while reply == nil && !cancelled { condition.wait() }
        if let reply { return reply }
        throw InputError.cancelled
    }

    /// Called by the main loop with an input_reply's value.
    func deliver(_ value: String) {
        condition.lock()
        if waiting { reply = value }
        condition.broadcast()
        condition.unlock()
    }

    /// Called on interrupt and shutdown.
    func cancel() {
        condition.lock()
        if waiting { cancelled = true }
        condition.broadcast()
        condition.unlock()
    }
}
