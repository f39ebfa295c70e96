import Foundation

/// How much memory this machine can still give: the kernel's estimate of what a new allocation
/// can take without swapping (Linux's MemAvailable). Models are sized against it before a single
/// tensor is allocated, so a file or a command that asks for too much fails with a message rather
/// than killing the process.
public enum MachineMemory {
    /// Bytes available now, or nil where /proc/meminfo cannot be read.
    public static func availableBytes() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
            return line.split(separator: " ").compactMap { Int($0) }.first.map { $0 * 1024 }
        }
        return nil
    }

    /// Throws when `bytes` (a Double, so absurd sizes do not overflow) exceed what is available,
    /// leaving a tenth for everything else.
    public static func check(_ bytes: Double, for what: String) throws {
        guard bytes.isFinite else { throw MemoryError(what: what, needed: bytes, available: availableBytes()) }
        let available = availableBytes().map(Double.init) ?? .infinity
        guard bytes <= 0.9 * available else { throw MemoryError(what: what, needed: bytes, available: availableBytes()) }
    }
}

/// A request for more memory than the machine has.
public struct MemoryError: Error, CustomStringConvertible {
    public let what: String
    public let needed: Double
    public let available: Int?

    public var description: String {
        let have = available.map { String(format: "%.1f GB", Double($0) / 1e9) } ?? "unknown"
        return String(format: "%@ needs %.3g GB of memory; this machine has %@ available", what, needed / 1e9, have)
    }
}
