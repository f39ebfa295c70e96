import CZeroMQ
import Foundation
import JupyterProtocol
#if canImport(Glibc)
import Glibc
#endif

/// The real transport: ROUTER shell/control/stdin, XPUB iopub, and a ROUTER heartbeat echoed on
/// its own thread. All sockets but the heartbeat belong to the thread that calls `poll`.
public final class ZeroMQTransport: KernelTransport {
    private let context: UnsafeMutableRawPointer
    private let shell, control, stdin, iopub, heartbeat: ZeroMQSocket
    private let wakePipe: (read: Int32, write: Int32)
    private var heartbeatThread: Thread?

    /// Binds every socket of the connection file. Port 0 is not supported: clients choose ports.
    public init(connection: ConnectionInfo) throws {
        guard let context = zmq_ctx_new() else { throw ZeroMQError.last("zmq_ctx_new") }
        self.context = context
        shell = try ZeroMQSocket(context: context, type: ZMQ_ROUTER)
        control = try ZeroMQSocket(context: context, type: ZMQ_ROUTER)
        stdin = try ZeroMQSocket(context: context, type: ZMQ_ROUTER)
        iopub = try ZeroMQSocket(context: context, type: ZMQ_XPUB)
        heartbeat = try ZeroMQSocket(context: context, type: ZMQ_ROUTER)

        // A client that reconnects with the same identity takes over its route (ipykernel#270).
        for router in [shell, control, stdin] {
            try router.setOption(ZMQ_ROUTER_HANDOVER, 1)
            try router.setOption(ZMQ_LINGER, 1000)
        }
        // Every subscription is reported, so each new client gets its iopub_welcome. Manual mode:
        // a subscription takes effect only when `poll` applies it, just before the kernel sends
        // that client's welcome, so nothing published earlier (status: starting) can reach a new
        // client ahead of its welcome (JEP 65 says the welcome comes first).
        try iopub.setOption(ZMQ_XPUB_VERBOSE, 1)
        try iopub.setOption(ZMQ_XPUB_MANUAL, 1)
        // Let the last status: idle reach clients when the kernel shuts down.
        try iopub.setOption(ZMQ_LINGER, 1000)
        try heartbeat.setOption(ZMQ_LINGER, 0)

        try shell.bind(connection.endpoint(port: connection.shellPort))
        try control.bind(connection.endpoint(port: connection.controlPort))
        try stdin.bind(connection.endpoint(port: connection.stdinPort))
        try iopub.bind(connection.endpoint(port: connection.iopubPort))
        try heartbeat.bind(connection.endpoint(port: connection.hbPort))

        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw ZeroMQError(call: "pipe", errno: errno) }
        _ = fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK)
        _ = fcntl(fds[1], F_SETFL, fcntl(fds[1], F_GETFL) | O_NONBLOCK)
        wakePipe = (fds[0], fds[1])
        startHeartbeat()
    }

    private func startHeartbeat() {
        let socket = UInt(bitPattern: heartbeat.handle)
        let thread = Thread {
            let socket = UnsafeMutableRawPointer(bitPattern: socket)
            // A ROUTER proxied onto itself, as ipykernel does: each message goes back, routing
            // identity first, to the peer that sent it; garbage included, byte for byte.
            // Returns when the context terminates.
            zmq_proxy(socket, socket, nil)
            zmq_close(socket)
        }
        thread.name = "sculpt.heartbeat"
        thread.start()
        heartbeatThread = thread
    }

    public func poll(timeout: TimeInterval?) throws -> [TransportEvent] {
        let sockets: [(ZeroMQSocket, Channel)] = [(control, .control), (shell, .shell), (stdin, .stdin), (iopub, .iopub)]
        var items = sockets.map { zmq_pollitem_t(socket: $0.0.handle, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0) }
        items.append(zmq_pollitem_t(socket: nil, fd: wakePipe.read, events: Int16(ZMQ_POLLIN), revents: 0))
        let milliseconds = timeout.map { Int($0 * 1000) } ?? -1
        let rc = zmq_poll(&items, Int32(items.count), milliseconds)
        if rc < 0 {
            if zmq_errno() == EINTR { return [] }
            throw ZeroMQError.last("zmq_poll")
        }
        var events = [TransportEvent]()
        if items[sockets.count].revents != 0 {
            var sink = [UInt8](repeating: 0, count: 256)
            while read(wakePipe.read, &sink, sink.count) > 0 {}
        }
        for (index, (socket, channel)) in sockets.enumerated() where items[index].revents != 0 {
            // Drain everything waiting so a burst is answered in one pass; control comes first.
            while let frames = try socket.receive() {
                if channel == .iopub {
                    // XPUB delivers subscriptions as one frame: 1 = subscribe, 0 = unsubscribe, then
                    // the topic. In manual mode they apply to the pipe that sent the last one, so
                    // each is applied as it is read. After a subscription the drain stops: the
                    // kernel sends that client's welcome before the next client is let in.
                    guard let first = frames.first, let kind = first.first else { continue }
                    let topic = Data(first.dropFirst())
                    if kind == 1 {
                        try iopub.setOption(ZMQ_SUBSCRIBE, bytes: topic)
                        events.append(.subscribed(topic: topic))
                        break
                    } else if kind == 0 {
                        try iopub.setOption(ZMQ_UNSUBSCRIBE, bytes: topic)
                    }
                } else {
                    events.append(.message(channel, frames))
                }
            }
        }
        return events
    }

    public func send(_ frames: [Data], on channel: Channel) throws {
        switch channel {
        case .shell: try shell.send(frames)
        case .control: try control.send(frames)
        case .stdin: try stdin.send(frames)
        case .iopub: try iopub.send(frames)
        case .heartbeat: break
        }
    }

    public func wake() {
        var byte: UInt8 = 1
        _ = write(wakePipe.write, &byte, 1)
    }

    public func close() {
        // Shutting the context down ends the heartbeat's zmq_proxy with ETERM; its thread then
        // closes its own socket. Terminating waits for that and for iopub's linger.
        zmq_ctx_shutdown(context)
        for socket in [shell, control, stdin, iopub] { socket.close() }
        zmq_ctx_term(context)
        _ = Glibc.close(wakePipe.read)
        _ = Glibc.close(wakePipe.write)
    }
}
