import Foundation
import JupyterProtocol

/// Shell requests, handled in arrival order on the worker thread.
extension Kernel {
    func runOnWorker(_ request: Message, sequence: Int) {
        around(request) {
            switch request.msgType {
            case "execute_request": execute(request, sequence: sequence)
            case "complete_request": complete(request)
            case "inspect_request": inspect(request)
            case "is_complete_request": isComplete(request)
            case "history_request": reply(request, "history_reply", ["status": "ok", "history": .array(history.answer(request.content))])
            case "comm_info_request": reply(request, "comm_info_reply", ["status": "ok", "comms": .emptyObject])
            case "comm_open":
                // No comm targets are registered: close it again rather than leave the client waiting.
                let id = request.content["comm_id"] ?? ""
                logger.info("comm_open for unknown target \(request.content["target_name"]?.stringValue ?? "?"); closing it")
                outbox.publish("comm_close", content: ["comm_id": id, "data": .emptyObject], parent: request)
            default:
                logger.info("ignored \(request.msgType) for an unknown comm")
            }
        }
    }

    /// An execute of the failed cell's session, sent (by its own date) before the failure's reply
    /// went out, and reaching the worker within a few seconds of it. The window keeps a client
    /// whose clock runs behind from having later, deliberate requests aborted.
    private func sentBeforeAFailure(_ request: Message) -> Bool {
        guard let (session, failedAt) = abortSentBefore, request.header.session == session,
              Date().timeIntervalSince(failedAt) < 2, let sent = request.header.date else { return false }
        return sent < failedAt
    }

    private func reply(_ request: Message, _ type: String, _ content: JSONValue) {
        outbox.send(type, content: content, on: .shell, parent: request)
    }

    private func execute(_ request: Message, sequence: Int) {
        let content = request.content
        let code = content["code"]?.stringValue ?? ""
        let silent = content["silent"]?.boolValue ?? false
        let storeHistory = silent ? false : (content["store_history"]?.boolValue ?? true)
        let allowStdin = content["allow_stdin"]?.boolValue ?? false
        let stopOnError = content["stop_on_error"]?.boolValue ?? true

        if sequence <= abortThrough || sentBeforeAFailure(request) {
            // Queued behind a cell that failed: do not run it.
            reply(request, "execute_reply", ["status": "aborted", "execution_count": .int(executionCount)])
            return
        }
        if storeHistory { executionCount += 1 }
        let count = executionCount
        if !silent {
            outbox.publish("execute_input", content: ["code": .string(code), "execution_count": .int(count)], parent: request)
        }

        let output = ExecutionOutput(outbox: outbox, request: request, allowStdin: allowStdin,
                                     inputBroker: inputBroker, timerQueue: timerQueue)
        setExecuting(true)
        let outcome = interpreter.execute(code, context: ExecutionContext(executionCount: count, silent: silent,
                                                                          allowStdin: allowStdin, output: output))
        setExecuting(false)
        output.flush()

        var resultText: String?
        switch outcome {
        case .ok(let result, let payload):
            if let result, !silent {
                resultText = result.data["text/plain"]?.stringValue
                output.publishInOrder("execute_result", content: [
                    "execution_count": .int(count), "data": .object(result.data), "metadata": .object(result.metadata),
                ])
            }
            reply(request, "execute_reply", ["status": "ok", "execution_count": .int(count),
                                             "payload": .array(payload), "user_expressions": .emptyObject])
        case .error(let name, let value, let traceback):
            let error: JSONValue = ["ename": .string(name), "evalue": .string(value),
                                    "traceback": .array(traceback.map(JSONValue.string))]
            output.publishInOrder("error", content: error)
            var replyContent = error
            replyContent["status"] = "error"
            replyContent["execution_count"] = .int(count)
            if stopOnError {
                // Requests the client sent before it could see this error ("Run all") may still be
                // on the wire: give them a moment to arrive, then abort everything that has.
                Thread.sleep(forTimeInterval: stopOnErrorGrace)
                abortThrough = latestArrivalSequence()
                abortSentBefore = (request.header.session, Date())
            }
            reply(request, "execute_reply", replyContent)
        }
        if storeHistory { history.record(line: count, input: code, output: resultText) }
    }

    private func complete(_ request: Message) {
        let code = request.content["code"]?.stringValue ?? ""
        let cursor = request.content["cursor_pos"]?.intValue ?? code.unicodeScalars.count
        let completion = interpreter.complete(code, cursor: cursor)
        let types: [JSONValue] = completion.types.map {
            ["start": .int(completion.cursorStart), "end": .int(completion.cursorEnd),
             "text": .string($0.text), "type": .string($0.type), "signature": .string($0.signature)]
        }
        reply(request, "complete_reply", [
            "status": "ok", "matches": .array(completion.matches.map(JSONValue.string)),
            "cursor_start": .int(completion.cursorStart), "cursor_end": .int(completion.cursorEnd),
            "metadata": ["_jupyter_types_experimental": .array(types)],
        ])
    }

    private func inspect(_ request: Message) {
        let code = request.content["code"]?.stringValue ?? ""
        let cursor = request.content["cursor_pos"]?.intValue ?? code.unicodeScalars.count
        let detail = request.content["detail_level"]?.intValue ?? 0
        let found = interpreter.inspect(code, cursor: cursor, detailLevel: detail)
        reply(request, "inspect_reply", ["status": "ok", "found": .bool(found != nil),
                                         "data": .object(found?.data ?? [:]), "metadata": .object(found?.metadata ?? [:])])
    }

    private func isComplete(_ request: Message) {
        let code = request.content["code"]?.stringValue ?? ""
        let content: JSONValue
        switch interpreter.isComplete(code) {
        case .complete: content = ["status": "complete"]
        case .incomplete(let indent): content = ["status": "incomplete", "indent": .string(indent)]
        case .invalid: content = ["status": "invalid"]
        case .unknown: content = ["status": "unknown"]
        }
        reply(request, "is_complete_reply", content)
    }
}
