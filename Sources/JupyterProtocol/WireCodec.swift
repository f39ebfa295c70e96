import Foundation

/// Why an incoming multipart message was refused. Each case is logged and the message dropped.
public enum WireError: Error, CustomStringConvertible, Equatable {
    /// No `<IDS|MSG>` delimiter frame.
    case missingDelimiter
    /// Fewer than signature + four JSON frames after the delimiter.
    case truncated(frames: Int)
    /// The signature does not match the exact received bytes.
    case badSignature
    /// A JSON part is not valid UTF-8 JSON, or not an object.
    case invalidJSON(part: String)
    /// The header lacks `msg_type` or `msg_id`.
    case incompleteHeader(missing: String)
    /// The message is larger than the configured limit.
    case oversized(bytes: Int, limit: Int)
    /// A signature already seen: the same signed bytes sent again (a replay).
    case duplicateSignature

    public var description: String {
        switch self {
        case .missingDelimiter: return "no <IDS|MSG> delimiter frame"
        case .truncated(let n): return "truncated message: \(n) frame(s) after the delimiter, need at least 5"
        case .badSignature: return "bad or missing signature"
        case .invalidJSON(let part): return "the \(part) frame is not a JSON object"
        case .incompleteHeader(let key): return "the header has no \(key)"
        case .oversized(let bytes, let limit): return "message of \(bytes) bytes exceeds the limit of \(limit)"
        case .duplicateSignature: return "duplicate signature: a replay of a message already received"
        }
    }
}

/// Turns multipart frames into messages and back: identities, `<IDS|MSG>`, signature, header,
/// parent header, metadata, content, buffers. The signature covers the exact bytes on the wire.
public struct WireCodec: Sendable {
    public static let delimiter = Data("<IDS|MSG>".utf8)
    public let signer: MessageSigner
    public let maximumBytes: Int
    /// Larger messages are dropped unread: no Sculpt command takes more than a few kilobytes.
    public static let defaultMaximumBytes = 64 << 20

    public init(signer: MessageSigner, maximumBytes: Int = WireCodec.defaultMaximumBytes) {
        self.signer = signer
        self.maximumBytes = maximumBytes
    }

    public func decode(_ frames: [Data]) throws -> Message {
        let total = frames.reduce(0) { $0 + $1.count }
        guard total <= maximumBytes else { throw WireError.oversized(bytes: total, limit: maximumBytes) }
        guard let split = frames.firstIndex(of: WireCodec.delimiter) else { throw WireError.missingDelimiter }
        let rest = frames[(split + 1)...]
        guard rest.count >= 5 else { throw WireError.truncated(frames: rest.count) }
        let signature = rest[rest.startIndex]
        let parts = Array(rest[(rest.startIndex + 1)..<(rest.startIndex + 5)])
        guard signer.verify(signature: signature, parts: parts) else { throw WireError.badSignature }

        let names = ["header", "parent_header", "metadata", "content"]
        var objects = [[String: JSONValue]]()
        for (name, part) in zip(names, parts) {
            guard let value = try? JSONValue.parse(part), let object = value.objectValue else {
                throw WireError.invalidJSON(part: name)
            }
            objects.append(object)
        }
        let header = MessageHeader(fields: objects[0])
        guard header.fields["msg_type"]?.stringValue != nil else { throw WireError.incompleteHeader(missing: "msg_type") }
        guard header.fields["msg_id"]?.stringValue != nil else { throw WireError.incompleteHeader(missing: "msg_id") }
        var message = Message(identities: Array(frames[..<split]), header: header,
                              parentHeader: .object(objects[1]), metadata: .object(objects[2]),
                              content: .object(objects[3]), buffers: Array(rest.dropFirst(5)))
        message.signature = signature
        return message
    }

    public func encode(_ message: Message) -> [Data] {
        let parts = [message.header.json.serialized(), message.parentHeader.serialized(),
                     message.metadata.serialized(), message.content.serialized()]
        var frames = message.identities
        frames.append(WireCodec.delimiter)
        frames.append(signer.signature(of: parts))
        frames.append(contentsOf: parts)
        frames.append(contentsOf: message.buffers)
        return frames
    }
}
