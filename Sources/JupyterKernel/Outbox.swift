import Foundation
import JupyterProtocol

/// The one way out of the kernel. Every thread that has something to send (the main loop, the
/// worker, stream flush timers) encodes it here, in order, under one lock; the main loop drains
/// the queue onto the sockets. So iopub messages from different threads never interleave, and a
/// reply never overtakes the outputs that came before it.
final class Outbox {
    private let lock = NSLock()
    private var queue = [(Channel, [Data])]()
    private let codec: WireCodec
    private let transport: KernelTransport
    let session: String

    init(codec: WireCodec, transport: KernelTransport, session: String) {
        self.codec = codec
        self.transport = transport
        self.session = session
    }

    /// Queues a message. On iopub the routing frame is a topic; elsewhere it is the request's identities.
    @discardableResult
    func send(_ msgType: String, content: JSONValue, on channel: Channel, parent: Message?,
              metadata: JSONValue = .emptyObject, identities: [Data]? = nil) -> MessageHeader {
        let (header, frames) = encode(msgType, content: content, on: channel, parent: parent,
                                      metadata: metadata, identities: identities)
        lock.lock()
        queue.append((channel, frames))
        lock.unlock()
        transport.wake()
        return header
    }

    /// Signs and frames a message without queueing it, for the one message that must go out
    /// ahead of the queue (a new subscriber's welcome).
    func encode(_ msgType: String, content: JSONValue, on channel: Channel, parent: Message?,
                metadata: JSONValue = .emptyObject, identities: [Data]? = nil) -> (MessageHeader, [Data]) {
        let header = MessageHeader(msgType: msgType, session: session)
        let routing: [Data]
        if channel == .iopub {
            routing = identities ?? [Data("kernel.\(session).\(msgType)".utf8)]
        } else {
            routing = identities ?? parent?.identities ?? []
        }
        let message = Message(identities: routing, header: header, parentHeader: parent?.header.json ?? .emptyObject,
                              metadata: metadata, content: content)
        return (header, codec.encode(message))
    }

    func publish(_ msgType: String, content: JSONValue, parent: Message?) {
        send(msgType, content: content, on: .iopub, parent: parent)
    }

    func status(_ state: String, parent: Message?) {
        publish("status", content: ["execution_state": .string(state)], parent: parent)
    }

    /// Takes everything queued so far, oldest first.
    func drain() -> [(Channel, [Data])] {
        lock.lock()
        defer { lock.unlock() }
        let out = queue
        queue.removeAll(keepingCapacity: true)
        return out
    }
}
