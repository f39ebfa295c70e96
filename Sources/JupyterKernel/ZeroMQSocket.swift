import CZeroMQ
import Foundation

/// A failed libzmq call, with the call's name and libzmq's message.
public struct ZeroMQError: Error, CustomStringConvertible {
    public let call: String
    public let errno: Int32
    public var description: String { "\(call): \(String(cString: zmq_strerror(errno)))" }

    static func last(_ call: String) -> ZeroMQError { ZeroMQError(call: call, errno: zmq_errno()) }
}

/// A thin owner of one libzmq socket. Not thread-safe: each socket is used by one thread.
final class ZeroMQSocket {
    let handle: UnsafeMutableRawPointer

    init(context: UnsafeMutableRawPointer, type: Int32) throws {
        guard let handle = zmq_socket(context, type) else { throw ZeroMQError.last("zmq_socket") }
        self.handle = handle
    }

    func setOption(_ option: Int32, _ value: Int32) throws {
        var v = value
        guard zmq_setsockopt(handle, option, &v, MemoryLayout<Int32>.size) == 0 else {
            throw ZeroMQError.last("zmq_setsockopt(\(option))")
        }
    }

    func setOption(_ option: Int32, bytes: Data) throws {
        let rc = bytes.withUnsafeBytes { zmq_setsockopt(handle, option, $0.baseAddress, $0.count) }
        guard rc == 0 else { throw ZeroMQError.last("zmq_setsockopt(\(option))") }
    }

    func bind(_ endpoint: String) throws {
        guard zmq_bind(handle, endpoint) == 0 else { throw ZeroMQError.last("zmq_bind(\(endpoint))") }
    }

    func connect(_ endpoint: String) throws {
        guard zmq_connect(handle, endpoint) == 0 else { throw ZeroMQError.last("zmq_connect(\(endpoint))") }
    }

    /// Sends all frames as one multipart message.
    func send(_ frames: [Data]) throws {
        for (index, frame) in frames.enumerated() {
            let flags: Int32 = index < frames.count - 1 ? ZMQ_SNDMORE : 0
            let rc = frame.withUnsafeBytes { bytes in
                zmq_send(handle, bytes.baseAddress, bytes.count, flags)
            }
            guard rc >= 0 else { throw ZeroMQError.last("zmq_send") }
        }
    }

    /// Receives one whole multipart message; nil when nothing is waiting and `blocking` is false.
    func receive(blocking: Bool = false) throws -> [Data]? {
        var frames = [Data]()
        while true {
            var message = zmq_msg_t()
            zmq_msg_init(&message)
            defer { zmq_msg_close(&message) }
            let rc = zmq_msg_recv(&message, handle, frames.isEmpty && !blocking ? ZMQ_DONTWAIT : 0)
            if rc < 0 {
                if frames.isEmpty && zmq_errno() == EAGAIN { return nil }
                throw ZeroMQError.last("zmq_msg_recv")
            }
            frames.append(Data(bytes: zmq_msg_data(&message), count: zmq_msg_size(&message)))
            if zmq_msg_more(&message) == 0 { return frames }
        }
    }

    func close() {
        zmq_close(handle)
    }
}
