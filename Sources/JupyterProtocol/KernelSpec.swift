import Foundation

/// The kernelspec `kernel.json` that tells clients how to start the kernel.
public struct KernelSpec: Codable, Equatable, Sendable {
    public var argv: [String]
    public var displayName: String
    public var language: String
    public var interruptMode: String
    public var kernelProtocolVersion: String
    public var metadata: [String: JSONValue]

    enum CodingKeys: String, CodingKey {
        case argv, language, metadata
        case displayName = "display_name"
        case interruptMode = "interrupt_mode"
        case kernelProtocolVersion = "kernel_protocol_version"
    }

    /// Sculpt's spec for a kernel binary at `executable` (an absolute path).
    public static func sculpt(executable: String) -> KernelSpec {
        KernelSpec(argv: [executable, "--connection-file", "{connection_file}"],
                   displayName: "Sculpt (LLM compression)", language: "sculpt",
                   // Message mode: the client sends interrupt_request on control and the kernel
                   // cancels cooperatively; no signal reaches the process group.
                   interruptMode: "message", kernelProtocolVersion: MessageHeader.protocolVersion,
                   metadata: ["debugger": .bool(false)])
    }

    public func encoded() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(self)) ?? Data()
    }
}
