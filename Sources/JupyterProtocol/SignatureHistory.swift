import Foundation

/// Signatures of the messages received so far, so that the same signed bytes sent again are
/// refused (jupyter_client's `digest_history`). A valid signature can only come from a holder of
/// the key, but anyone who sees the traffic can resend it; each message's header carries a fresh
/// msg_id and date, so a genuine client never repeats one.
///
/// Bounded: past `capacity` entries the oldest tenth is forgotten, as jupyter_client culls its
/// history, so memory stays flat over a long session.
public final class SignatureHistory {
    public let capacity: Int
    private var seen = Set<Data>()
    private var order = [Data]()
    private var head = 0

    public init(capacity: Int = 1 << 16) {
        self.capacity = max(10, capacity)
    }

    /// Records a signature; false when it was already there. Empty signatures (signing off) are
    /// never recorded: without a key there is nothing to protect.
    public func insert(_ signature: Data) -> Bool {
        guard !signature.isEmpty else { return true }
        guard !seen.contains(signature) else { return false }
        if seen.count >= capacity {
            let drop = capacity / 10
            for old in order[head..<(head + drop)] { seen.remove(old) }
            head += drop
            if head > capacity { order.removeFirst(head); head = 0 }
        }
        seen.insert(signature)
        order.append(signature)
        return true
    }

    public var count: Int { seen.count }
}
