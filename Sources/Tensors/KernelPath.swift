import Foundation

/// Which instruction set the quantized products run on. Read once from the CPU (Linux reports the
/// features the processor has *and* the kernel enabled in /proc/cpuinfo's flags), and settable so
/// that tests compare every path on one machine and a benchmark can run the narrower one.
public enum KernelPath: String, Sendable, CaseIterable, Comparable {
    /// Plain Swift, one element at a time: the reference every SIMD path is checked against.
    case scalar
    /// 256-bit integer dot products (vpmaddubsw + vpmaddwd): every x86 machine Sculpt runs on.
    case avx2
    /// 512-bit VNNI dot products (vpdpbusd), four blocks per instruction pair.
    case avx512vnni = "avx512-vnni"

    public static func < (a: KernelPath, b: KernelPath) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }

    /// The CPU flags each path needs (as /proc/cpuinfo spells them). The AVX-512 module is compiled
    /// for Cascade Lake, the first CPU with VNNI, so its code may use anything that CPU has.
    var requiredFlags: [String] {
        switch self {
        case .scalar: return []
        case .avx2: return ["avx2", "fma", "f16c"]
        case .avx512vnni: return ["avx2", "fma", "f16c", "avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl", "avx512_vnni"]
        }
    }

    /// The CPU's flags, read once.
    public static let cpuFlags: Set<String> = {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return [] }
        for line in text.split(separator: "\n") where line.hasPrefix("flags") {
            return Set(line.split(separator: ":", maxSplits: 1).last?.split(separator: " ").map(String.init) ?? [])
        }
        return []
    }()

    /// Paths this CPU can run, narrowest first.
    public static let supported: [KernelPath] = allCases.filter { $0.requiredFlags.allSatisfy(cpuFlags.contains) }

    /// The widest path this CPU has; `SCULPT_KERNELS=avx2|scalar` asks for a narrower one.
    public static let best: KernelPath = {
        let widest = supported.last ?? .scalar
        if let asked = ProcessInfo.processInfo.environment["SCULPT_KERNELS"].flatMap(KernelPath.init(rawValue:)),
           supported.contains(asked) { return asked }
        return widest
    }()

    private static let lock = NSLock()
    nonisolated(unsafe) private static var chosen = best

    /// The path products use now. Setting a path the CPU lacks is refused (it would crash).
    public static var current: KernelPath {
        get { lock.lock(); defer { lock.unlock() }; return chosen }
        set {
            precondition(supported.contains(newValue), "this CPU cannot run the \(newValue.rawValue) kernels")
            lock.lock(); chosen = newValue; lock.unlock()
        }
    }

    /// Runs `body` with `path` chosen, then puts the previous one back.
    public static func with<T>(_ path: KernelPath, _ body: () throws -> T) rethrows -> T {
        let previous = current
        current = path
        defer { current = previous }
        return try body()
    }
}
