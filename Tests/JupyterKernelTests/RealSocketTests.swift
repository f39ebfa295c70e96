import CZeroMQ
import Foundation
import JupyterKernel
import JupyterProtocol
import XCTest

/// One test over real ZeroMQ sockets on 127.0.0.1: kernel_info on shell, heartbeat echo,
/// iopub welcome on subscribe, shutdown on control.
final class RealSocketTests: XCTestCase {
    func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                _ = bind(fd, pointer, length)
                _ = getsockname(fd, pointer, &length)
            }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    func testKernelOverRealSockets() throws {
        let connection = ConnectionInfo(shellPort: freePort(), iopubPort: freePort(), stdinPort: freePort(),
                                        controlPort: freePort(), hbPort: freePort(), key: "real-socket-key")
        let transport = try ZeroMQTransport(connection: connection)
        let kernel = Kernel(transport: transport, key: connection.key, interpreter: ScriptedInterpreter())
        let stopped = DispatchSemaphore(value: 0)
        Thread { kernel.run(); stopped.signal() }.start()

        let context = zmq_ctx_new()!
        defer { zmq_ctx_term(context) }
        func open(_ type: Int32, _ port: Int) -> UnsafeMutableRawPointer {
            let s = zmq_socket(context, type)!
            var timeout: Int32 = 30_000
            zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout, 4)
            var linger: Int32 = 0
            zmq_setsockopt(s, ZMQ_LINGER, &linger, 4)
            XCTAssertEqual(zmq_connect(s, connection.endpoint(port: port)), 0)
            return s
        }
        func send(_ s: UnsafeMutableRawPointer, _ frames: [Data]) {
            for (i, frame) in frames.enumerated() {
                _ = frame.withUnsafeBytes { zmq_send(s, $0.baseAddress, $0.count, i < frames.count - 1 ? ZMQ_SNDMORE : 0) }
            }
        }
        func receive(_ s: UnsafeMutableRawPointer) -> [Data] {
            var frames = [Data]()
            repeat {
                var message = zmq_msg_t()
                zmq_msg_init(&message)
                defer { zmq_msg_close(&message) }
                guard zmq_msg_recv(&message, s, 0) >= 0 else { return frames }
                frames.append(Data(bytes: zmq_msg_data(&message), count: zmq_msg_size(&message)))
                if zmq_msg_more(&message) == 0 { break }
            } while true
            return frames
        }
        let codec = WireCodec(signer: MessageSigner(key: connection.key))

        let iopub = open(ZMQ_SUB, connection.iopubPort)
        zmq_setsockopt(iopub, ZMQ_SUBSCRIBE, "", 0)
        // The kernel may have said `starting` before or after this subscription took effect.
        var first = try codec.decode(receive(iopub))
        if first.msgType == "status" { first = try codec.decode(receive(iopub)) }
        XCTAssertEqual(first.msgType, "iopub_welcome")

        let shell = open(ZMQ_DEALER, connection.shellPort)
        let request = MessageHeader(msgType: "kernel_info_request", session: "c")
        send(shell, codec.encode(Message(header: request)))
        let reply = try codec.decode(receive(shell))
        XCTAssertEqual(reply.msgType, "kernel_info_reply")
        XCTAssertEqual(reply.parentHeader["msg_id"]?.stringValue, request.msgID)

        let heartbeat = open(ZMQ_REQ, connection.hbPort)
        let garbage = [Data([0, 255, 13, 10]), Data("ping".utf8)]
        send(heartbeat, garbage)
        XCTAssertEqual(receive(heartbeat), garbage)

        let control = open(ZMQ_DEALER, connection.controlPort)
        send(control, codec.encode(Message(header: MessageHeader(msgType: "shutdown_request", session: "c"),
                                           content: ["restart": false])))
        XCTAssertEqual(try codec.decode(receive(control)).msgType, "shutdown_reply")
        XCTAssertEqual(stopped.wait(timeout: .now() + 30), .success)
        for s in [iopub, shell, heartbeat, control] { zmq_close(s) }
    }
}
