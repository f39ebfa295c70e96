import Foundation
import JupyterProtocol
import Logging

/// A Jupyter kernel around an `Interpreter`. The main loop (the caller of `run`) owns the
/// transport and answers control at once; shell requests run in order on one worker thread,
/// so interrupt, shutdown and heartbeat stay live while a command works for minutes.
public final class Kernel {
    let transport: KernelTransport
    let codec: WireCodec
    /// Signatures already received: a replayed message is dropped like a forged one.
    private let signatures = SignatureHistory()
    let interpreter: Interpreter
    let logger: Logger
    let outbox: Outbox
    let worker = DispatchQueue(label: "sculpt.kernel.worker")
    let timerQueue = DispatchQueue(label: "sculpt.kernel.stream-flush")
    let inputBroker = InputBroker()

    // Main-loop state.
    private var running = true
    private var restartRequested = false
    private var arrivals = 0

    // Worker state: the counter and history belong to the kernel, not to the interpreter.
    var executionCount = 0
    var history = ExecutionHistory()
    /// Executes that arrived at or before this sequence number are aborted (stop_on_error).
    var abortThrough = 0
    /// After a failure with stop_on_error: its session and when its error reply went out. Executes
    /// of that session whose header says they were sent before then were sent without the client
    /// having seen the error ("Run all"); they are aborted however late a busy machine delivers them.
    var abortSentBefore: (session: String, date: Date)?
    private let arrivalLock = NSLock()
    private var latestArrival = 0
    private let executionLock = NSLock()
    private var executing = false
    /// After a failed cell with stop_on_error, how long to let requests already sent reach the
    /// kernel before answering, so they are aborted too (ipykernel's stop_on_error_timeout).
    let stopOnErrorGrace: TimeInterval

    public init(transport: KernelTransport, key: String, interpreter: Interpreter,
                maximumMessageBytes: Int = WireCodec.defaultMaximumBytes, stopOnErrorGrace: TimeInterval = 0.05,
                logger: Logger = Logger(label: "sculpt.kernel")) {
        self.stopOnErrorGrace = stopOnErrorGrace
        self.transport = transport
        self.codec = WireCodec(signer: MessageSigner(key: key), maximumBytes: maximumMessageBytes)
        self.interpreter = interpreter
        self.logger = logger
        // One session id per process; a restart is a new process with a new id.
        self.outbox = Outbox(codec: codec, transport: transport, session: UUID().uuidString.lowercased())
    }

    public var session: String { outbox.session }

    /// Runs until a shutdown_request; returns whether the client asked for a restart.
    @discardableResult
    public func run() -> Bool {
        outbox.status("starting", parent: nil)
        flushOutbox()
        while running {
            let events: [TransportEvent]
            do {
                events = try transport.poll(timeout: 1.0)
            } catch {
                logger.error("transport poll failed: \(error)")
                break
            }
            for event in events { handle(event) }
            flushOutbox()
        }
        // Give the interpreter a moment to stop what it was doing, then leave.
        let done = DispatchSemaphore(value: 0)
        worker.async { [interpreter, restartRequested] in
            interpreter.shutdown(restart: restartRequested)
            done.signal()
        }
        _ = done.wait(timeout: .now() + 2)
        flushOutbox()
        transport.close()
        return restartRequested
    }

    /// Asks the running command to stop; used for SIGINT and interrupt_request. An interrupt
    /// while nothing runs does nothing (it must not cancel the next cell).
    public func interrupt() {
        executionLock.lock()
        defer { executionLock.unlock() }
        guard executing else { return }
        interpreter.interrupt()
        inputBroker.cancel()
    }

    /// Marks the span in which interrupts reach the interpreter.
    func setExecuting(_ value: Bool) {
        executionLock.lock()
        executing = value
        executionLock.unlock()
    }

    private func flushOutbox() {
        for (channel, frames) in outbox.drain() {
            do {
                try transport.send(frames, on: channel)
            } catch {
                logger.error("send on \(channel.rawValue) failed: \(error)")
            }
        }
    }

    private func handle(_ event: TransportEvent) {
        switch event {
        case .subscribed(let topic):
            // JEP 65: tell each new subscriber that iopub is live: signed, parent {}, sent under the
            // topic it subscribed to (so a prefix subscription receives it) and naming that topic.
            // Sent now, ahead of anything queued: the transport has just let this subscriber in,
            // and the welcome must be the first thing it receives.
            let (_, frames) = outbox.encode("iopub_welcome",
                                            content: ["subscription": .string(String(decoding: topic, as: UTF8.self))],
                                            on: .iopub, parent: nil, identities: [topic])
            do {
                try transport.send(frames, on: .iopub)
            } catch {
                logger.error("send of iopub_welcome failed: \(error)")
            }
        case .message(let channel, let frames):
            let message: Message
            do {
                message = try codec.decode(frames)
                guard signatures.insert(message.signature) else { throw WireError.duplicateSignature }
            } catch {
                logger.warning("dropped a message on \(channel.rawValue): \(error)")
                return
            }
            dispatch(message, on: channel)
        }
    }

    private func dispatch(_ message: Message, on channel: Channel) {
        switch (channel, message.msgType) {
        case (.stdin, "input_reply"):
            inputBroker.deliver(message.content["value"]?.stringValue ?? "")
        case (.stdin, let type):
            logger.warning("ignored \(type) on stdin")
        case (_, "kernel_info_request"):
            // Answered on the main loop: it touches no interpreter state, and clients probe
            // readiness with it while a long command may be running.
            around(message) { self.replyKernelInfo(to: message, on: channel) }
        case (.control, "interrupt_request"):
            around(message) {
                self.interrupt()
                self.outbox.send("interrupt_reply", content: ["status": "ok"], on: .control, parent: message)
            }
        case (_, "shutdown_request"):
            around(message) {
                self.interrupt()
                self.inputBroker.cancel()
                let restart = message.content["restart"]?.boolValue ?? false
                self.restartRequested = restart
                self.outbox.send("shutdown_reply", content: ["status": "ok", "restart": .bool(restart)],
                                 on: channel, parent: message)
            }
            running = false
        case (.shell, let type) where Kernel.workerRequests.contains(type):
            arrivalLock.lock()
            arrivals += 1
            let sequence = arrivals
            latestArrival = sequence
            arrivalLock.unlock()
            worker.async { self.runOnWorker(message, sequence: sequence) }
        case (_, let type):
            logger.warning("unsupported message type \(type) on \(channel.rawValue)")
            around(message) {
                let replyType = type.hasSuffix("_request") ? String(type.dropLast(8)) + "_reply" : nil
                if let replyType {
                    self.outbox.send(replyType, content: ["status": "error", "ename": "UnsupportedRequest",
                                                          "evalue": .string("Sculpt does not support \(type)"),
                                                          "traceback": []],
                                     on: channel, parent: message)
                }
            }
        }
    }

    static let workerRequests: Set<String> = [
        "execute_request", "complete_request", "inspect_request", "is_complete_request",
        "history_request", "comm_info_request", "comm_open", "comm_msg", "comm_close",
    ]

    /// Busy before anything else the request causes, idle after the last of it.
    func around(_ request: Message, _ body: () -> Void) {
        outbox.status("busy", parent: request)
        body()
        outbox.status("idle", parent: request)
    }

    /// The latest arrival so far, read by the worker when an execution fails with stop_on_error.
    func latestArrivalSequence() -> Int {
        arrivalLock.lock()
        defer { arrivalLock.unlock() }
        return latestArrival
    }

    private func replyKernelInfo(to message: Message, on channel: Channel) {
        let info = interpreter.kernelInfo
        let content: JSONValue = [
            "status": "ok",
            "protocol_version": .string(MessageHeader.protocolVersion),
            "implementation": .string(info.implementation),
            "implementation_version": .string(info.implementationVersion),
            "language_info": info.languageInfo,
            "banner": .string(info.banner),
            "help_links": .array(info.helpLinks.map { ["text": .string($0.text), "url": .string($0.url)] }),
            "supported_features": [],
        ]
        outbox.send("kernel_info_reply", content: content, on: channel, parent: message)
    }
}
