import Foundation
import JupyterKernel
import JupyterProtocol
import XCTest

/// An interpreter whose behaviour the code spells out, so kernel tests need no command language.
/// `print TEXT`, `err TEXT`, `result TEXT`, `fail`, `wait` (until interrupted), `display`, `input`,
/// `burst N` (N small prints).
final class ScriptedInterpreter: Interpreter {
    private let interrupted = NSCondition()
    private var isInterrupted = false
    private(set) var shutdownCalls = [Bool]()
    var kernelInfo: KernelInfo {
        KernelInfo(implementation: "scripted", implementationVersion: "1", banner: "test",
                   languageInfo: ["name": "scripted", "file_extension": ".txt", "mimetype": "text/plain", "version": "1"])
    }

    func execute(_ code: String, context: ExecutionContext) -> ExecutionOutcome {
        interrupted.lock(); isInterrupted = false; interrupted.unlock()
        let word = code.split(separator: " ", maxSplits: 1).first.map(String.init) ?? ""
        let rest = code.split(separator: " ", maxSplits: 1).dropFirst().first.map(String.init) ?? ""
        switch word {
        case "print": context.output.stream(rest + "\n", toStderr: false)
        case "err": context.output.stream(rest + "\n", toStderr: true)
        case "result": return .ok(result: .plainText(rest), payload: [])
        case "fail": return .error(name: "Failure", value: "asked to fail", traceback: ["asked to fail"])
        case "burst":
            for i in 0..<(Int(rest) ?? 0) { context.output.stream("\(i),", toStderr: false) }
        case "display":
            context.output.display(.plainText("v1"), displayID: "progress")
            context.output.updateDisplay(.plainText("v2"), displayID: "progress")
            context.output.clearOutput(wait: true)
        case "input":
            do {
                let answer = try context.output.input(prompt: "name? ", password: false)
                return .ok(result: .plainText("got \(answer)"), payload: [])
            } catch {
                return .error(name: "InputError", value: "\(error)", traceback: [])
            }
        case "wait":
            interrupted.lock()
            while !isInterrupted { interrupted.wait() }
            interrupted.unlock()
            return .error(name: "Interrupted", value: "interrupted", traceback: [])
        default: break
        }
        return .ok
    }

    func complete(_ code: String, cursor: Int) -> Completion { Completion(matches: ["print"], cursorStart: 0, cursorEnd: cursor) }
    func inspect(_ code: String, cursor: Int, detailLevel: Int) -> DisplayData? { code.isEmpty ? nil : .plainText("about \(code)") }
    func isComplete(_ code: String) -> CodeCompleteness { code.hasSuffix("\\") ? .incomplete(indent: "") : .complete }

    func interrupt() {
        interrupted.lock(); isInterrupted = true; interrupted.broadcast(); interrupted.unlock()
    }

    func shutdown(restart: Bool) { shutdownCalls.append(restart) }
}

/// A client on the in-memory transport: signs requests, decodes what the kernel sends.
final class TestClient {
    let key = "test-key-0123"
    let transport = InMemoryTransport()
    let interpreter = ScriptedInterpreter()
    let codec: WireCodec
    let identity = Data("client-1".utf8)
    let session = UUID().uuidString
    var kernel: Kernel!
    private var thread: Thread?
    private let finished = DispatchSemaphore(value: 0)
    private(set) var restartResult: Bool?

    init() {
        codec = WireCodec(signer: MessageSigner(key: key))
        // A generous stop-on-error grace: the test sends a failing cell and the next one back to
        // back, and on a busy machine the second may take far longer than the kernel's 50 ms to arrive.
        kernel = Kernel(transport: transport, key: key, interpreter: interpreter, maximumMessageBytes: 1 << 20, stopOnErrorGrace: 0.5)
        let thread = Thread { [unowned self] in
            self.restartResult = self.kernel.run()
            self.finished.signal()
        }
        thread.start()
        self.thread = thread
    }

    /// Sends a request and returns its header.
    @discardableResult
    func send(_ type: String, _ content: JSONValue = .emptyObject, on channel: Channel = .shell, date: Date = Date()) -> MessageHeader {
        let header = MessageHeader(msgType: type, session: session, date: date)
        transport.deliver(codec.encode(Message(identities: [identity], header: header, content: content)), on: channel)
        return header
    }

    func sendRaw(_ frames: [Data], on channel: Channel = .shell) {
        transport.deliver(frames, on: channel)
    }

    func receive(on channel: Channel, timeout: TimeInterval = 30, file: StaticString = #filePath, line: UInt = #line) -> Message? {
        guard let frames = transport.waitForMessage(on: channel, timeout: timeout) else {
            XCTFail("nothing arrived on \(channel) in \(timeout) s", file: file, line: line)
            return nil
        }
        do {
            return try codec.decode(frames)
        } catch {
            XCTFail("kernel sent an undecodable message: \(error)", file: file, line: line)
            return nil
        }
    }

    /// iopub messages for one request, from its busy to its idle.
    func iopub(for request: MessageHeader, file: StaticString = #filePath, line: UInt = #line) -> [Message] {
        var out = [Message]()
        while let message = receive(on: .iopub, file: file, line: line) {
            guard message.parentHeader["msg_id"]?.stringValue == request.msgID else { continue }
            out.append(message)
            if message.msgType == "status", message.content["execution_state"] == "idle" { break }
        }
        return out
    }

    /// Runs one execute and returns its reply and iopub messages.
    func execute(_ code: String, silent: Bool = false, storeHistory: Bool = true, allowStdin: Bool = false) -> (Message?, [Message]) {
        let header = send("execute_request", ["code": .string(code), "silent": .bool(silent), "store_history": .bool(storeHistory),
                                              "allow_stdin": .bool(allowStdin), "user_expressions": .emptyObject, "stop_on_error": true])
        let reply = receive(on: .shell)
        return (reply, iopub(for: header))
    }

    func shutdown(restart: Bool = false) -> Message? {
        send("shutdown_request", ["restart": .bool(restart)], on: .control)
        let reply = receive(on: .control)
        _ = finished.wait(timeout: .now() + 5)
        return reply
    }

    var hasStopped: Bool { restartResult != nil }
}
