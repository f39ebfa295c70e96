import Foundation
import Tensors

/// A GGUF file (version 2 or 3), memory-mapped: metadata parsed at open, tensors decoded on demand.
public final class GGUFFile {
    public struct TensorInfo: Equatable, Sendable {
        public let name: String
        /// ggml order: dimensions[0] is the contiguous axis.
        public let dimensions: [Int]
        public let type: GGMLType
        /// From the start of the data section.
        public let offset: Int

        public var elementCount: Int { dimensions.reduce(1, *) }
        /// Row-major shape, slowest axis first: a PyTorch [out, in] weight.
        public var shape: [Int] { dimensions.reversed() }
        public var byteCount: Int { type.traits!.byteCount(elements: elementCount) }
    }

    public let version: UInt32
    public let metadata: [String: GGUFValue]
    /// Metadata keys in file order.
    public let metadataKeys: [String]
    public let tensors: [TensorInfo]
    public let alignment: Int
    private let data: Data
    private let dataStart: Int

    public convenience init(path: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw GGUFError.unreadable(path: path, reason: "no such file")
        }
        guard !isDirectory.boolValue else { throw GGUFError.unreadable(path: path, reason: "it is a directory, not a .gguf file") }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        } catch {
            let reason = FileManager.default.isReadableFile(atPath: path) ? "it could not be read" : "permission denied"
            throw GGUFError.unreadable(path: path, reason: reason)
        }
        try self.init(data: data)
    }

    public init(data: Data) throws {
        self.data = data
        var reader = ByteReader(data: data)
        guard try reader.read(UInt32.self, "the header") == 0x4655_4747 else { throw GGUFError.badMagic }
        version = try reader.read(UInt32.self, "the header")
        guard version == 2 || version == 3 else { throw GGUFError.unsupportedVersion(version) }
        let tensorCount = try reader.read(UInt64.self, "the header")
        let keyCount = try reader.read(UInt64.self, "the header")
        // Each key-value takes at least 13 bytes, each tensor info at least 28: reject absurd counts early.
        guard keyCount <= UInt64(data.count / 13), tensorCount <= UInt64(data.count / 28) else {
            throw GGUFError.truncated(context: "the header (it claims \(keyCount) keys and \(tensorCount) tensors)")
        }

        var metadata = [String: GGUFValue]()
        var keys = [String]()
        for index in 0..<Int(keyCount) {
            let key = try reader.string("metadata key #\(index)")
            let rawType = try reader.read(UInt32.self, "metadata \(key)")
            guard let type = GGUFValueType(rawValue: rawType) else { throw GGUFError.badValueType(key: key, type: rawType) }
            metadata[key] = try reader.value(type, key: key)
            keys.append(key)
        }
        self.metadata = metadata
        metadataKeys = keys

        if let value = metadata["general.alignment"] {
            guard case .uint32(let a) = value, a > 0, a & (a - 1) == 0 else {
                throw GGUFError.badValue(key: "general.alignment", reason: "must be a u32 power of two")
            }
            alignment = Int(a)
        } else {
            alignment = 32
        }

        var infos = [TensorInfo]()
        for index in 0..<Int(tensorCount) {
            let name = try reader.string("tensor info #\(index)")
            let dimensionCount = try reader.read(UInt32.self, "tensor info \(name)")
            guard (1...4).contains(dimensionCount) else {
                throw GGUFError.badTensor(tensor: name, reason: "\(dimensionCount) dimensions (1 to 4 allowed)")
            }
            var dimensions = [Int]()
            for _ in 0..<dimensionCount {
                let d = try reader.read(UInt64.self, "tensor info \(name)")
                guard d > 0, d < 1 << 32 else { throw GGUFError.badTensor(tensor: name, reason: "dimension \(d)") }
                dimensions.append(Int(d))
            }
            let rawType = try reader.read(UInt32.self, "tensor info \(name)")
            let offset = try reader.read(UInt64.self, "tensor info \(name)")
            guard let type = GGMLType(rawValue: rawType), let traits = type.traits else {
                throw GGUFError.unsupportedTensorType(tensor: name, type: rawType)
            }
            guard dimensions[0] % traits.blockSize == 0 else {
                throw GGUFError.badTensor(tensor: name, reason: "row length \(dimensions[0]) is not a multiple of \(type)'s block of \(traits.blockSize)")
            }
            guard offset % UInt64(alignment) == 0 else {
                throw GGUFError.badTensor(tensor: name, reason: "data offset \(offset) is not aligned to \(alignment)")
            }
            // Offsets and sizes are checked against the file itself, so that no later sum overflows.
            guard offset <= UInt64(data.count) else {
                throw GGUFError.truncated(context: "the data of tensor \(name) (its offset \(offset) is past the end of the file)")
            }
            var elements = 1
            for d in dimensions {
                let (product, overflow) = elements.multipliedReportingOverflow(by: d)
                guard !overflow, traits.byteCount(elements: product) <= data.count else {
                    throw GGUFError.truncated(context: "the data of tensor \(name) (dimensions \(dimensions) need more bytes than the file has)")
                }
                elements = product
            }
            infos.append(TensorInfo(name: name, dimensions: dimensions, type: type, offset: Int(offset)))
        }
        tensors = infos
        dataStart = (reader.position + alignment - 1) / alignment * alignment
        for info in infos where dataStart + info.offset + info.byteCount > data.count {
            throw GGUFError.truncated(context: "the data of tensor \(info.name)")
        }
    }

    public func info(_ name: String) -> TensorInfo? {
        tensors.first { $0.name == name }
    }

    /// A tensor decoded to Float32, in row-major shape (slowest axis first).
    public func tensor(_ name: String) throws -> Tensor {
        guard let info = info(name) else { throw GGUFError.missingTensor(name) }
        let out = Tensor(zeros: info.shape)
        decode(info, into: out.data)
        return out
    }

    /// Decodes a tensor into caller-provided storage of `info.elementCount` floats.
    public func decode(_ info: TensorInfo, into out: UnsafeMutablePointer<Float>) {
        data.withUnsafeBytes { bytes in
            GGMLBlocks.dequantize(info.type, bytes.baseAddress! + dataStart + info.offset, into: out, count: info.elementCount)
        }
    }

    /// Runs `body` on a tensor's bytes as stored.
    public func withBytes<T>(of info: TensorInfo, _ body: (UnsafeRawPointer) throws -> T) rethrows -> T {
        try data.withUnsafeBytes { try body($0.baseAddress! + dataStart + info.offset) }
    }

    /// Bytes of tensor data in the file.
    public var tensorBytes: Int { tensors.reduce(0) { $0 + $1.byteCount } }
}

/// Little-endian reads with bounds checks that name what was being read.
struct ByteReader {
    let data: Data
    var position = 0

    mutating func read<T: FixedWidthInteger>(_: T.Type, _ context: @autoclosure () -> String) throws -> T {
        let size = MemoryLayout<T>.size
        guard position + size <= data.count else { throw GGUFError.truncated(context: context()) }
        let value = data.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: position, as: T.self) }
        position += size
        return T(littleEndian: value)
    }

    mutating func string(_ context: @autoclosure () -> String) throws -> String {
        let length = try read(UInt64.self, context())
        guard length <= UInt64(data.count - position) else { throw GGUFError.truncated(context: context()) }
        let bytes = data[data.startIndex + position ..< data.startIndex + position + Int(length)]
        position += Int(length)
        guard let s = String(data: bytes, encoding: .utf8) else { throw GGUFError.badString(context: context()) }
        return s
    }

    /// Arrays may hold arrays; no real file nests more than a level or two, and a deeper claim
    /// would recurse until the stack runs out.
    static let maximumArrayDepth = 8

    mutating func value(_ type: GGUFValueType, key: String, depth: Int = 0) throws -> GGUFValue {
        switch type {
        case .uint8: return .uint8(try read(UInt8.self, "metadata \(key)"))
        case .int8: return .int8(try read(Int8.self, "metadata \(key)"))
        case .uint16: return .uint16(try read(UInt16.self, "metadata \(key)"))
        case .int16: return .int16(try read(Int16.self, "metadata \(key)"))
        case .uint32: return .uint32(try read(UInt32.self, "metadata \(key)"))
        case .int32: return .int32(try read(Int32.self, "metadata \(key)"))
        case .uint64: return .uint64(try read(UInt64.self, "metadata \(key)"))
        case .int64: return .int64(try read(Int64.self, "metadata \(key)"))
        case .float32: return .float32(Float(bitPattern: try read(UInt32.self, "metadata \(key)")))
        case .float64: return .float64(Double(bitPattern: try read(UInt64.self, "metadata \(key)")))
        case .bool:
            let b = try read(UInt8.self, "metadata \(key)")
            guard b <= 1 else { throw GGUFError.badValue(key: key, reason: "bool byte \(b)") }
            return .bool(b == 1)
        case .string: return .string(try string("metadata \(key)"))
        case .array:
            let rawType = try read(UInt32.self, "metadata \(key)")
            guard let elementType = GGUFValueType(rawValue: rawType) else { throw GGUFError.badValueType(key: key, type: rawType) }
            guard depth < ByteReader.maximumArrayDepth || elementType != .array else {
                throw GGUFError.badValue(key: key, reason: "arrays nested deeper than \(ByteReader.maximumArrayDepth) levels")
            }
            let count = try read(UInt64.self, "metadata \(key)")
            guard count <= UInt64(data.count - position) else { throw GGUFError.truncated(context: "metadata \(key)") }
            var values = [GGUFValue]()
            values.reserveCapacity(Int(count))
            for _ in 0..<count { values.append(try value(elementType, key: key, depth: depth + 1)) }
            return .array(elementType, values)
        }
    }
}
