import Foundation
import Tensors

/// Writes GGUF version 3: metadata, then tensors of the types `GGMLTypeTraits` marks writable.
public struct GGUFWriter {
    public private(set) var metadata = [(String, GGUFValue)]()
    private var tensors = [(name: String, shape: [Int], type: GGMLType, bytes: [UInt8])]()
    public let alignment = 32

    public init() {}

    public mutating func set(_ key: String, _ value: GGUFValue) {
        metadata.removeAll { $0.0 == key }
        metadata.append((key, value))
    }

    /// Adds a tensor with a row-major shape (slowest axis first).
    public mutating func add(_ name: String, _ tensor: Tensor, as type: GGMLType) throws {
        guard let traits = type.traits, traits.isWritable else {
            let writable = GGMLTypeTraits.all.filter(\.isWritable).map(\.name)
            throw GGUFError.cannotQuantize(tensor: name, reason: "writing \(type) is not supported (\(writable.joined(separator: ", ")))")
        }
        let rowLength = tensor.shape.last ?? 1
        let block = traits.blockSize
        guard rowLength % block == 0 else {
            throw GGUFError.cannotQuantize(tensor: name, reason: "row length \(rowLength) is not a multiple of \(type)'s block of \(block)")
        }
        tensors.append((name, tensor.shape, type, GGMLBlocks.quantize(type, tensor.data, count: tensor.count)))
    }

    /// A quantization grid's codes as `type`'s blocks, exactly, or nil (see `GGMLBlocks.pack`).
    public static func blocks(of grid: GroupQuantizedMatrix, rows: Int, columns: Int, as type: GGMLType) -> [UInt8]? {
        GGMLBlocks.pack(grid, rows: rows, columns: columns, as: type)
    }

    /// Adds raw bytes already in `type`'s layout (a row-major shape, slowest axis first).
    public mutating func add(_ name: String, shape: [Int], type: GGMLType, bytes: [UInt8]) {
        tensors.append((name, shape, type, bytes))
    }

    public func encoded() -> Data {
        var out = Data()
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func putString(_ s: String) { put(UInt64(s.utf8.count)); out.append(contentsOf: Array(s.utf8)) }
        func putValue(_ v: GGUFValue) {
            switch v {
            case .uint8(let x): put(x)
            case .int8(let x): put(x)
            case .uint16(let x): put(x)
            case .int16(let x): put(x)
            case .uint32(let x): put(x)
            case .int32(let x): put(x)
            case .uint64(let x): put(x)
            case .int64(let x): put(x)
            case .float32(let x): put(x.bitPattern)
            case .float64(let x): put(x.bitPattern)
            case .bool(let b): put(UInt8(b ? 1 : 0))
            case .string(let s): putString(s)
            case .array(let type, let values):
                put(type.rawValue)
                put(UInt64(values.count))
                values.forEach(putValue)
            }
        }
        put(UInt32(0x4655_4747))
        put(UInt32(3))
        put(UInt64(tensors.count))
        put(UInt64(metadata.count))
        for (key, value) in metadata {
            putString(key)
            put(value.type.rawValue)
            putValue(value)
        }
        var offset = 0
        for t in tensors {
            putString(t.name)
            put(UInt32(t.shape.count))
            for d in t.shape.reversed() { put(UInt64(d)) }
            put(t.type.rawValue)
            put(UInt64(offset))
            offset += (t.bytes.count + alignment - 1) / alignment * alignment
        }
        func pad() { while out.count % alignment != 0 { out.append(0) } }
        pad()
        for t in tensors {
            out.append(contentsOf: t.bytes)
            pad()
        }
        return out
    }

    public func write(to path: String) throws {
        try encoded().write(to: URL(fileURLWithPath: path), options: .atomic)
    }
}
