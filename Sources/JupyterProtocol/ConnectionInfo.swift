import Foundation

/// Why a connection file could not be used.
public enum ConnectionFileError: Error, CustomStringConvertible {
    /// The file could not be read.
    case unreadable(path: String, reason: String)
    /// The file is not a JSON object with the required keys and types.
    case malformed(path: String, reason: String)
    /// A value is present but not usable (unknown transport or signature scheme, bad port).
    case invalidValue(path: String, key: String, value: String)

    public var description: String {
        switch self {
        case .unreadable(let path, let reason): return "cannot read connection file \(path): \(reason)"
        case .malformed(let path, let reason): return "malformed connection file \(path): \(reason)"
        case .invalidValue(let path, let key, let value): return "connection file \(path): invalid \(key) \"\(value)\""
        }
    }
}

/// The connection file a client writes for the kernel: where to bind and how to sign.
public struct ConnectionInfo: Codable, Equatable, Sendable {
    public var transport: String
    public var ip: String
    public var shellPort: Int
    public var iopubPort: Int
    public var stdinPort: Int
    public var controlPort: Int
    public var hbPort: Int
    public var signatureScheme: String
    public var key: String
    public var kernelName: String?

    enum CodingKeys: String, CodingKey {
        case transport, ip, key
        case shellPort = "shell_port"
        case iopubPort = "iopub_port"
        case stdinPort = "stdin_port"
        case controlPort = "control_port"
        case hbPort = "hb_port"
        case signatureScheme = "signature_scheme"
        case kernelName = "kernel_name"
    }

    public init(transport: String = "tcp", ip: String = "127.0.0.1", shellPort: Int, iopubPort: Int,
                stdinPort: Int, controlPort: Int, hbPort: Int, signatureScheme: String = "hmac-sha256",
                key: String, kernelName: String? = nil) {
        self.transport = transport
        self.ip = ip
        self.shellPort = shellPort
        self.iopubPort = iopubPort
        self.stdinPort = stdinPort
        self.controlPort = controlPort
        self.hbPort = hbPort
        self.signatureScheme = signatureScheme
        self.key = key
        self.kernelName = kernelName
    }

    /// Reads and validates a connection file.
    public static func load(path: String) throws -> ConnectionInfo {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            let reason = FileManager.default.fileExists(atPath: path) ? "\(error.localizedDescription)" : "no such file"
            throw ConnectionFileError.unreadable(path: path, reason: reason)
        }
        let info: ConnectionInfo
        do {
            info = try JSONDecoder().decode(ConnectionInfo.self, from: data)
        } catch DecodingError.keyNotFound(let key, _) {
            throw ConnectionFileError.malformed(path: path, reason: "missing \"\(key.stringValue)\"")
        } catch DecodingError.typeMismatch(_, let context) {
            let key = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw ConnectionFileError.malformed(path: path, reason: "\"\(key)\" has the wrong type")
        } catch {
            throw ConnectionFileError.malformed(path: path, reason: "not a JSON object")
        }
        try info.validate(path: path)
        return info
    }

    func validate(path: String) throws {
        guard transport == "tcp" || transport == "ipc" else {
            throw ConnectionFileError.invalidValue(path: path, key: "transport", value: transport)
        }
        guard signatureScheme == "hmac-sha256" || key.isEmpty else {
            throw ConnectionFileError.invalidValue(path: path, key: "signature_scheme", value: signatureScheme)
        }
        let ports = [("shell_port", shellPort), ("iopub_port", iopubPort), ("stdin_port", stdinPort),
                     ("control_port", controlPort), ("hb_port", hbPort)]
        for (name, port) in ports where !(0...65535).contains(port) {
            throw ConnectionFileError.invalidValue(path: path, key: name, value: String(port))
        }
    }

    /// The ZeroMQ endpoint for a port: `tcp://ip:port`, or `ipc://ip-port` for the ipc transport.
    public func endpoint(port: Int) -> String {
        transport == "ipc" ? "ipc://\(ip)-\(port)" : "\(transport)://\(ip):\(port)"
    }
}
