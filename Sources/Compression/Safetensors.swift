import Foundation
import Tensors

/// The safetensors container (Hugging Face): an 8-byte little-endian header length, a JSON header
/// `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}`, then raw
/// little-endian data. Sculpt writes and reads F32.
public enum Safetensors {
    public static func encode(_ tensors: [(String, Tensor)], metadata: [String: String] = [:]) -> Data {
        var header = [String: Any]()
        var offset = 0
        for (name, tensor) in tensors {
            header[name] = ["dtype": "F32", "shape": tensor.shape, "data_offsets": [offset, offset + tensor.byteCount]]
            offset += tensor.byteCount
        }
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var json = (try? JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])) ?? Data("{}".utf8)
        // Pad the header with spaces so the data starts 8-byte aligned.
        while json.count % 8 != 0 { json.append(UInt8(ascii: " ")) }
        var out = Data()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(json)
        for (_, tensor) in tensors { out.append(UnsafeBufferPointer(start: tensor.data, count: tensor.count)) }
        return out
    }

    /// Tensors by name, with their row-major shapes. Every length, offset and shape in the header
    /// is checked against the file before anything is allocated: a header may claim anything.
    public static func decode(_ data: Data, path: String) throws -> [String: Tensor] {
        func fail(_ reason: String) -> LoRAError { .unreadable(path: path, reason: reason) }
        guard data.count >= 8 else { throw fail("shorter than a safetensors header") }
        let rawLength = data.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard rawLength > 0, rawLength <= UInt64(data.count - 8) else { throw fail("the header length \(rawLength) runs past the file") }
        let headerLength = Int(rawLength)
        guard let header = try? JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + headerLength))) as? [String: Any] else {
            throw fail("the header is not a JSON object")
        }
        let base = 8 + headerLength
        let available = data.count - base
        var out = [String: Tensor]()
        for (name, value) in header where name != "__metadata__" {
            guard let entry = value as? [String: Any], let dtype = entry["dtype"] as? String,
                  let shape = (entry["shape"] as? [NSNumber]).flatMap(exactIntegers),
                  let offsets = (entry["data_offsets"] as? [NSNumber]).flatMap(exactIntegers), offsets.count == 2 else {
                throw fail("tensor \(name) has an incomplete header entry (dtype, shape and data_offsets as integers)")
            }
            guard dtype == "F32" else { throw fail("tensor \(name) is \(dtype); Sculpt reads F32 adapters") }
            guard !shape.isEmpty, shape.allSatisfy({ $0 >= 0 }) else { throw fail("tensor \(name) has shape \(shape)") }
            // Elements × 4 bytes without overflow, and no more than the file holds.
            var bytes = 4
            for dimension in shape {
                let (product, overflow) = bytes.multipliedReportingOverflow(by: dimension)
                guard !overflow, product <= available else { throw fail("tensor \(name): its shape \(shape) needs more bytes than the file holds") }
                bytes = product
            }
            guard offsets[0] >= 0, offsets[0] <= offsets[1], offsets[1] <= available, offsets[1] - offsets[0] == bytes else {
                throw fail("tensor \(name): its data offsets \(offsets) do not match its shape \(shape) or run past the file")
            }
            let tensor = Tensor(zeros: shape)
            data.withUnsafeBytes { raw in
                tensor.data.withMemoryRebound(to: UInt8.self, capacity: bytes) {
                    $0.update(from: raw.baseAddress!.assumingMemoryBound(to: UInt8.self) + base + offsets[0], count: bytes)
                }
            }
            out[name] = tensor
        }
        return out
    }

    /// JSON numbers as Ints, or nil when one is fractional or beyond Int (NSNumber would wrap it).
    static func exactIntegers(_ numbers: [NSNumber]) -> [Int]? {
        var out = [Int]()
        for number in numbers {
            let d = number.doubleValue
            guard d.isFinite, d == d.rounded(), abs(d) < 9.0e18 else { return nil }
            out.append(number.int64Value == Int64(d) ? Int(number.int64Value) : Int(d))
        }
        return out
    }
}
