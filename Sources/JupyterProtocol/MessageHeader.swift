import Foundation

/// A message header. The members are kept as received so that a reply's `parent_header`
/// is a verbatim copy of the request's header, unknown keys included.
public struct MessageHeader: Equatable, Sendable {
    public private(set) var fields: [String: JSONValue]

    public init(fields: [String: JSONValue]) {
        self.fields = fields
    }

    public init(msgType: String, session: String, username: String = "sculpt",
                msgID: String = UUID().uuidString.lowercased(), date: Date = Date()) {
        fields = [
            "msg_id": .string(msgID),
            "msg_type": .string(msgType),
            "session": .string(session),
            "username": .string(username),
            "date": .string(Self.isoDate(date)),
            "version": .string(Self.protocolVersion),
        ]
    }

    public var msgID: String { fields["msg_id"]?.stringValue ?? "" }
    public var msgType: String { fields["msg_type"]?.stringValue ?? "" }
    public var session: String { fields["session"]?.stringValue ?? "" }
    public var username: String { fields["username"]?.stringValue ?? "" }
    public var json: JSONValue { .object(fields) }

    /// The messaging protocol version this kernel speaks.
    public static let protocolVersion = "5.4"

    /// ISO-8601 in UTC with microseconds, as jupyter_client writes it.
    public static func isoDate(_ date: Date) -> String {
        var seconds = date.timeIntervalSince1970
        let micro = Int((seconds - seconds.rounded(.down)) * 1_000_000)
        seconds.round(.down)
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ",
                      Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
                      Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), micro)
    }
}
