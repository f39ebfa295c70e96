import Foundation

/// One Jupyter message: routing identities, the four JSON parts and optional raw buffers.
public struct Message: Sendable {
    public var identities: [Data]
    public var header: MessageHeader
    /// The request's header, or `{}` when there is none; never null.
    public var parentHeader: JSONValue
    public var metadata: JSONValue
    public var content: JSONValue
    public var buffers: [Data]
    /// The signature it arrived with (empty for messages made here or when signing is off).
    public var signature = Data()

    public init(identities: [Data] = [], header: MessageHeader, parentHeader: JSONValue = .emptyObject,
                metadata: JSONValue = .emptyObject, content: JSONValue = .emptyObject, buffers: [Data] = []) {
        self.identities = identities
        self.header = header
        self.parentHeader = parentHeader
        self.metadata = metadata
        self.content = content
        self.buffers = buffers
    }

    public var msgType: String { header.msgType }
}
