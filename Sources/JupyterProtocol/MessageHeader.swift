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

    /// When the sender made the message (its `date`), or nil when absent or unreadable.
    public var date: Date? { fields["date"]?.stringValue.flatMap(Self.parseISODate) }

    /// Reads `YYYY-MM-DDTHH:MM:SS[.ffffff][Z|±HH:MM]` (jupyter_client's form; no zone means UTC).
    public static func parseISODate(_ text: String) -> Date? {
        let chars = Array(text.utf8)
        func number(_ from: Int, _ count: Int) -> Int? {
            guard from + count <= chars.count else { return nil }
            var n = 0
            for c in chars[from..<(from + count)] {
                guard (48...57).contains(c) else { return nil }
                n = n * 10 + Int(c - 48)
            }
            return n
        }
        guard chars.count >= 19, chars[4] == 45, chars[7] == 45, chars[10] == 84 || chars[10] == 32, chars[13] == 58, chars[16] == 58,
              let year = number(0, 4), let month = number(5, 2), let day = number(8, 2),
              let hour = number(11, 2), let minute = number(14, 2), let second = number(17, 2) else { return nil }
        var i = 19
        var fraction = 0.0, scale = 0.1
        if i < chars.count, chars[i] == 46 {
            i += 1
            while i < chars.count, (48...57).contains(chars[i]) { fraction += Double(chars[i] - 48) * scale; scale /= 10; i += 1 }
        }
        var offset = 0
        if i < chars.count {
            if chars[i] == 90 { i += 1 } else if chars[i] == 43 || chars[i] == 45 {
                let sign = chars[i] == 43 ? 1 : -1
                guard let h = number(i + 1, 2) else { return nil }
                let colon = i + 3 < chars.count && chars[i + 3] == 58 ? 1 : 0
                guard let m = number(i + 3 + colon, 2) else { return nil }
                offset = sign * (h * 3600 + m * 60)
                i += 5 + colon
            }
        }
        guard i == chars.count else { return nil }
        var components = DateComponents()
        (components.year, components.month, components.day) = (year, month, day)
        (components.hour, components.minute, components.second) = (hour, minute, second)
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        guard let base = calendar.date(from: components) else { return nil }
        return base.addingTimeInterval(fraction - Double(offset))
    }

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
