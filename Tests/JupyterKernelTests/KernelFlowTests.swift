import Foundation
import JupyterKernel
import JupyterProtocol
import XCTest

/// The whole request flow over the in-memory transport.
final class KernelFlowTests: XCTestCase {
    var client: TestClient!

    override func setUp() { client = TestClient() }
    override func tearDown() { if !client.hasStopped { _ = client.shutdown() } }

    func testStartsWithOneStartingStatusWithEmptyParent() {
        let first = client.receive(on: .iopub)
        XCTAssertEqual(first?.msgType, "status")
        XCTAssertEqual(first?.content["execution_state"], "starting")
        XCTAssertEqual(first?.parentHeader, .emptyObject)
    }

    func testKernelInfoOnShellAndControl() {
        for channel in [Channel.shell, .control] {
            let request = client.send("kernel_info_request", on: channel)
            let reply = client.receive(on: channel)
            XCTAssertEqual(reply?.msgType, "kernel_info_reply")
            XCTAssertEqual(reply?.parentHeader["msg_id"]?.stringValue, request.msgID)
            XCTAssertEqual(reply?.content["protocol_version"], "5.4")
            XCTAssertEqual(reply?.content["supported_features"], [])
            XCTAssertEqual(reply?.content["language_info"]?["name"], "scripted")
            XCTAssertEqual(reply?.identities, [client.identity])
            let statuses = client.iopub(for: request).map { $0.content["execution_state"]?.stringValue }
            XCTAssertEqual(statuses, ["busy", "idle"])
        }
    }

    func testExecuteOrderBusyInputOutputsReplyIdle() {
        let header = client.send("execute_request", ["code": "result 42", "silent": false])
        let reply = client.receive(on: .shell)
        let messages = client.iopub(for: header)
        XCTAssertEqual(messages.map(\.msgType), ["status", "execute_input", "execute_result", "status"])
        XCTAssertEqual(messages.first?.content["execution_state"], "busy")
        XCTAssertEqual(messages[2].content["data"]?["text/plain"], "42")
        XCTAssertEqual(reply?.content["status"], "ok")
        XCTAssertEqual(reply?.content["execution_count"], 1)
        // The reply goes out after the last output and before idle.
        let order = client.transport.sentSoFar().compactMap { entry -> String? in
            guard let m = try? client.codec.decode(entry.frames), m.parentHeader["msg_id"]?.stringValue == header.msgID else { return nil }
            return m.msgType == "status" ? m.content["execution_state"]?.stringValue : m.msgType
        }
        XCTAssertEqual(order, ["busy", "execute_input", "execute_result", "execute_reply", "idle"])
    }

    func testExecutionCountRules() {
        XCTAssertEqual(client.execute("print a").0?.content["execution_count"], 1)
        let (silentReply, silentOutputs) = client.execute("result x", silent: true)
        XCTAssertEqual(silentReply?.content["execution_count"], 1)
        XCTAssertFalse(silentOutputs.contains { $0.msgType == "execute_input" || $0.msgType == "execute_result" })
        XCTAssertEqual(client.execute("print b", storeHistory: false).0?.content["execution_count"], 1)
        let (failed, outputs) = client.execute("fail")
        XCTAssertEqual(failed?.content["execution_count"], 2)
        XCTAssertEqual(failed?.content["status"], "error")
        XCTAssertEqual(failed?.content["ename"], "Failure")
        XCTAssertEqual(outputs.filter { $0.msgType == "error" }.count, 1)
        XCTAssertEqual(client.execute("print c").0?.content["execution_count"], 3)
    }

    func testHistoryTailRangeAndSearch() {
        for code in ["result 1", "print x", "result 1", "result 2"] { _ = client.execute(code) }
        func history(_ content: JSONValue) -> [JSONValue] {
            client.send("history_request", content)
            return client.receive(on: .shell)?.content["history"]?.arrayValue ?? []
        }
        XCTAssertEqual(history(["hist_access_type": "tail", "n": 2, "output": false, "raw": true]),
                       [[1, 3, "result 1"], [1, 4, "result 2"]])
        XCTAssertEqual(history(["hist_access_type": "tail", "n": 1, "output": true, "raw": true]), [[1, 4, ["result 2", "2"]]])
        XCTAssertEqual(history(["hist_access_type": "range", "session": 1, "start": 2, "stop": 3, "output": false, "raw": true]),
                       [[1, 2, "print x"]])
        XCTAssertEqual(history(["hist_access_type": "search", "pattern": "result*", "output": false, "raw": true]).count, 3)
        XCTAssertEqual(history(["hist_access_type": "search", "pattern": "result 1", "unique": true, "output": false, "raw": true]),
                       [[1, 3, "result 1"]])
        XCTAssertEqual(history(["hist_access_type": "search", "pattern": "r?sult*", "n": 2, "output": false, "raw": true]).count, 2)
    }

    func testStreamTextIsBatched() {
        let (_, outputs) = client.execute("burst 500")
        let streams = outputs.filter { $0.msgType == "stream" }
        // 500 prints in about a millisecond, flushed every 0.1 s: a few messages, even on a slow machine.
        XCTAssertLessThan(streams.count, 50, "500 prints should coalesce into a few stream messages")
        let text = streams.compactMap { $0.content["text"]?.stringValue }.joined()
        XCTAssertEqual(text, (0..<500).map { "\($0)," }.joined())
    }

    func testStdoutAndStderrKeepTheirOrder() {
        let header = client.send("execute_request", ["code": "print one"])
        _ = client.receive(on: .shell)
        _ = client.iopub(for: header)
        let (_, outputs) = client.execute("err two")
        XCTAssertEqual(outputs.filter { $0.msgType == "stream" }.map { $0.content["name"] }, ["stderr"])
    }

    func testDisplayUpdateAndClearCarryTheDisplayID() {
        let (_, outputs) = client.execute("display")
        let kinds = outputs.map(\.msgType)
        XCTAssertEqual(kinds, ["status", "execute_input", "display_data", "update_display_data", "clear_output", "status"])
        XCTAssertEqual(outputs[2].content["transient"]?["display_id"], "progress")
        XCTAssertEqual(outputs[3].content["transient"]?["display_id"], "progress")
        XCTAssertEqual(outputs[3].content["data"]?["text/plain"], "v2")
        XCTAssertEqual(outputs[4].content["wait"], true)
    }

    func testInterruptOnControlWhileExecuting() {
        let header = client.send("execute_request", ["code": "wait"])
        // Wait until the cell is running.
        while let m = client.receive(on: .iopub), !(m.msgType == "execute_input" && m.parentHeader["msg_id"]?.stringValue == header.msgID) {}
        // Control answers while the worker is busy.
        let info = client.send("kernel_info_request", on: .control)
        XCTAssertEqual(client.receive(on: .control)?.parentHeader["msg_id"]?.stringValue, info.msgID)
        client.send("interrupt_request", on: .control)
        XCTAssertEqual(client.receive(on: .control)?.msgType, "interrupt_reply")
        // Generous on a busy machine: how fast an interrupt lands is measured over real sockets.
        let reply = client.receive(on: .shell, timeout: 10)
        XCTAssertEqual(reply?.parentHeader["msg_id"]?.stringValue, header.msgID)
        XCTAssertEqual(reply?.content["status"], "error")
        XCTAssertEqual(reply?.content["ename"], "Interrupted")
        // The kernel goes on.
        XCTAssertEqual(client.execute("result after").0?.content["status"], "ok")
    }

    /// A request the client sent before the failure was answered is aborted even when a busy
    /// machine delivers it after the grace: its own date says when it was sent.
    func testStopOnErrorAbortsRequestsSentBeforeTheFailureWhateverTheirDelay() {
        let sentEarly = Date()
        XCTAssertEqual(client.execute("fail").0?.content["status"], "error")
        // Delivered only now, long after the grace, but dated before the error reply.
        _ = client.send("execute_request", ["code": "print late", "stop_on_error": true], date: sentEarly)
        XCTAssertEqual(client.receive(on: .shell)?.content["status"], "aborted")
        XCTAssertEqual(client.execute("print after").0?.content["status"], "ok", "sent after the error reply: runs")
    }

    func testHeaderDatesParseInJupyterClientsForms() throws {
        let date = try XCTUnwrap(MessageHeader.parseISODate("2026-12-01T02:25:32.123456Z"))
        XCTAssertEqual(date.timeIntervalSince1970, 1_796_091_932.123456, accuracy: 1e-5)
        XCTAssertEqual(MessageHeader.parseISODate("2026-12-01T03:25:32.123456+01:00")!.timeIntervalSince1970, date.timeIntervalSince1970, accuracy: 1e-5)
        XCTAssertEqual(MessageHeader.parseISODate("2026-12-01T02:25:32")!.timeIntervalSince1970, 1_796_091_932, accuracy: 1e-6)
        XCTAssertEqual(MessageHeader.parseISODate(MessageHeader.isoDate(date))!.timeIntervalSince1970, date.timeIntervalSince1970, accuracy: 1e-5)
        for bad in ["", "yesterday", "2026-12-01", "2026-12-01T02:25:32.1Zjunk"] { XCTAssertNil(MessageHeader.parseISODate(bad), bad) }
    }

    func testAnInterruptWhileIdleDoesNotCancelTheNextCell() {
        client.send("interrupt_request", on: .control)
        XCTAssertEqual(client.receive(on: .control)?.msgType, "interrupt_reply")
        let header = client.send("execute_request", ["code": "wait"])
        XCTAssertNil(client.transport.waitForMessage(on: .shell, timeout: 0.2), "the cell must still be running")
        client.send("interrupt_request", on: .control)
        _ = client.receive(on: .control)
        XCTAssertEqual(client.receive(on: .shell)?.parentHeader["msg_id"]?.stringValue, header.msgID)
    }

    func testStopOnErrorAbortsWhatWasQueuedBehind() {
        _ = client.send("execute_request", ["code": "fail", "stop_on_error": true])
        _ = client.send("execute_request", ["code": "print queued", "stop_on_error": true])
        XCTAssertEqual(client.receive(on: .shell)?.content["status"], "error")
        XCTAssertEqual(client.receive(on: .shell)?.content["status"], "aborted")
        // Sent after the failure was answered: runs.
        XCTAssertEqual(client.execute("print later").0?.content["status"], "ok")
    }

    func testInputRequestOnlyWhenAllowed() {
        let header = client.send("execute_request", ["code": "input", "allow_stdin": true])
        let request = client.receive(on: .stdin)
        XCTAssertEqual(request?.msgType, "input_request")
        XCTAssertEqual(request?.content["prompt"], "name? ")
        XCTAssertEqual(request?.identities, [client.identity])
        XCTAssertEqual(request?.parentHeader["msg_id"]?.stringValue, header.msgID)
        client.send("input_reply", ["value": "Ada"], on: .stdin)
        XCTAssertEqual(client.receive(on: .shell)?.content["status"], "ok")
        XCTAssertTrue(client.iopub(for: header).contains { $0.content["data"]?["text/plain"] == "got Ada" })

        let (reply, _) = client.execute("input", allowStdin: false)
        XCTAssertEqual(reply?.content["status"], "error")
        XCTAssertNil(client.transport.waitForMessage(on: .stdin, timeout: 0.05))
    }

    func testCommsAndEditorRequests() {
        client.send("comm_info_request", [:])
        XCTAssertEqual(client.receive(on: .shell)?.content["comms"], .emptyObject)
        let open = client.send("comm_open", ["comm_id": "c1", "target_name": "jupyter.widget", "data": [:]])
        XCTAssertTrue(client.iopub(for: open).contains { $0.msgType == "comm_close" && $0.content["comm_id"] == "c1" })

        client.send("complete_request", ["code": "pr", "cursor_pos": 2])
        let completion = client.receive(on: .shell)
        XCTAssertEqual(completion?.content["matches"], ["print"])
        XCTAssertEqual(completion?.content["cursor_end"], 2)
        client.send("inspect_request", ["code": "print", "cursor_pos": 1, "detail_level": 0])
        XCTAssertEqual(client.receive(on: .shell)?.content["found"], true)
        client.send("is_complete_request", ["code": "print \\"])
        XCTAssertEqual(client.receive(on: .shell)?.content["status"], "incomplete")
    }

    func testBadMessagesAreDroppedAndTheNextOneAnswered() {
        let good = client.codec.encode(Message(identities: [client.identity],
                                               header: MessageHeader(msgType: "kernel_info_request", session: "s")))
        var badSignature = good
        badSignature[2] = Data(String(repeating: "0", count: 64).utf8)
        client.sendRaw(badSignature)
        client.sendRaw(Array(good.prefix(4)))                                   // truncated
        client.sendRaw([client.identity, Data("garbage".utf8)])                  // no delimiter
        client.sendRaw(good.map { _ in Data(repeating: 0xff, count: 3) })        // nothing valid at all
        let unsigned = WireCodec(signer: client.codec.signer)
        let noType = [client.identity, WireCodec.delimiter] + {
            let parts = [#"{"msg_id":"x"}"#, "{}", "{}", "{}"].map { Data($0.utf8) }
            return [unsigned.signer.signature(of: parts)] + parts
        }()
        client.sendRaw(noType)
        var huge = Message(identities: [client.identity], header: MessageHeader(msgType: "kernel_info_request", session: "s"))
        huge.content = ["pad": .string(String(repeating: "x", count: 2 << 20))]
        client.sendRaw(client.codec.encode(huge))
        let info = client.send("kernel_info_request")
        let reply = client.receive(on: .shell)
        XCTAssertEqual(reply?.parentHeader["msg_id"]?.stringValue, info.msgID, "only the good request is answered")
        XCTAssertNil(client.transport.waitForMessage(on: .shell, timeout: 0.05))
    }

    func testUnknownRequestGetsAnErrorReply() {
        client.send("frobnicate_request")
        let reply = client.receive(on: .shell)
        XCTAssertEqual(reply?.msgType, "frobnicate_reply")
        XCTAssertEqual(reply?.content["status"], "error")
    }

    func testIopubWelcomeOnSubscribeNamesTheTopic() {
        _ = client.receive(on: .iopub) // starting
        client.transport.subscribe()
        let welcome = client.receive(on: .iopub)
        XCTAssertEqual(welcome?.msgType, "iopub_welcome")
        XCTAssertEqual(welcome?.content["subscription"], "")
        XCTAssertEqual(welcome?.parentHeader, .emptyObject)
        client.transport.subscribe(topic: Data("kernel.".utf8))
        let prefixed = client.receive(on: .iopub)
        XCTAssertEqual(prefixed?.content["subscription"], "kernel.")
        XCTAssertEqual(prefixed?.identities, [Data("kernel.".utf8)], "sent under the subscribed topic")
    }

    func testShutdownRepliesThenStopsAndHonoursRestart() {
        let reply = client.shutdown(restart: true)
        XCTAssertEqual(reply?.msgType, "shutdown_reply")
        XCTAssertEqual(reply?.content["restart"], true)
        XCTAssertTrue(client.transport.waitUntilClosed())
        XCTAssertEqual(client.restartResult, true)
        XCTAssertEqual(client.interpreter.shutdownCalls, [true])
    }

    func testOneSessionPerKernelAndFreshMessageIDs() {
        var ids = Set<String>()
        var sessions = Set<String>()
        for _ in 0..<3 {
            let (reply, outputs) = client.execute("print x")
            for m in [reply].compactMap({ $0 }) + outputs {
                XCTAssertTrue(ids.insert(m.header.msgID).inserted)
                sessions.insert(m.header.session)
            }
        }
        XCTAssertEqual(sessions, [client.kernel.session])
        let other = TestClient()
        XCTAssertNotEqual(client.kernel.session, other.kernel.session)
        _ = other.shutdown()
    }
}
