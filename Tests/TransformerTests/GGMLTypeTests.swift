import Foundation
import Tensors
@testable import Transformer
import XCTest

/// `GGMLType`, `GGMLBlocks`, the writer and the reader agree with the type-traits table for every
/// type they handle: the same ids and names, and byte counts of rows × (columns / block) × bytes.
final class GGMLTypeTests: XCTestCase {
    func testEveryRowIsANamedGGMLTypeAndEveryOtherIdHasNoRow() {
        for row in GGMLTypeTraits.all {
            let type = GGMLType(row)
            XCTAssertEqual(type.rawValue, row.id)
            XCTAssertEqual(type.traits, row)
            XCTAssertEqual(type.description, row.name)
        }
        for id in UInt32(0)..<64 {
            guard let type = GGMLType(rawValue: id), type.traits == nil else { continue }
            XCTAssertNil(GGMLTypeTraits(id: id))
            XCTAssertFalse(type.description.hasPrefix("#"), "type \(id) is named")
        }
        XCTAssertEqual(GGUFError.unsupportedTensorType(tensor: "w", type: 12).description,
                       "tensor w has type Q4_K, which Sculpt does not read (F32, F16, BF16, Q8_0, Q4_0, Q4_1)")
    }

    func testWrittenAndReadBytesFollowTheTable() throws {
        let (rows, columns) = (3, 64)
        var rng = SeededGenerator(seed: 9)
        let x = Tensor(zeros: [rows, columns])
        rng.fillNormal(x, std: 1)
        var writer = GGUFWriter()
        var written = [String: [UInt8]]()
        for row in GGMLTypeTraits.all where row.isWritable {
            let bytes = GGMLBlocks.quantize(GGMLType(row), x.data, count: x.count)
            XCTAssertEqual(bytes.count, rows * (columns / row.blockSize) * row.bytesPerBlock, row.name)
            written[row.name] = bytes
            try writer.add("w.\(row.name)", x, as: GGMLType(row))
        }
        for row in GGMLTypeTraits.all where !row.isWritable {
            XCTAssertThrowsError(try writer.add("w", x, as: GGMLType(row))) {
                XCTAssertTrue("\($0)".hasSuffix("writing \(row.name) is not supported (F32, F16, Q8_0, Q4_0, Q4_1)"), "\($0)")
            }
        }
        let file = try GGUFFile(data: writer.encoded())
        for row in GGMLTypeTraits.all where row.isWritable {
            let info = try XCTUnwrap(file.info("w.\(row.name)"))
            XCTAssertEqual(info.type, GGMLType(row))
            XCTAssertEqual(info.byteCount, rows * (columns / row.blockSize) * row.bytesPerBlock, row.name)
            let stored = file.withBytes(of: info) { Array(UnsafeRawBufferPointer(start: $0, count: info.byteCount)) }
            XCTAssertTrue(stored == written[row.name], "\(row.name): stored as encoded")
            let packed = file.withBytes(of: info) { BlockQuantizedMatrix(ggmlType: Int(info.type.rawValue), blocks: $0, rows: rows, columns: columns) }
            XCTAssertEqual(packed != nil, row.isKeptPacked, row.name)
            if let packed { XCTAssertTrue(packed.ggmlBlocks()!.bytes == stored, "\(row.name): kept packed byte for byte") }
        }
    }

    func testPackedGridsFollowTheTable() throws {
        let (rows, columns) = (2, 64)
        for (type, bits, symmetric) in [(GGMLType.q8_0, 8, true), (.q4_0, 4, true), (.q4_1, 4, false)] {
            let row = try XCTUnwrap(type.traits)
            var grid = GroupQuantizedMatrix(rows: rows, columns: columns, bits: bits, group: row.blockSize, symmetric: symmetric)
            for r in 0..<rows {
                for g in 0..<grid.groupsPerRow { grid.setGroup(r, g, scale: 0.25 * Float(r + g + 1), zero: symmetric ? 1 << (bits - 1) : 3) }
                for c in 0..<columns { grid.setCode(r, c, (r * 7 + c * 5) % (grid.largestCode + 1)) }
            }
            let bytes = try XCTUnwrap(GGMLBlocks.pack(grid, rows: rows, columns: columns, as: type), "\(type)")
            XCTAssertEqual(bytes.count, rows * (columns / row.blockSize) * row.bytesPerBlock, "\(type)")
            let packed = try XCTUnwrap(bytes.withUnsafeBytes { BlockQuantizedMatrix(ggmlType: Int(row.id), blocks: $0.baseAddress!, rows: rows, columns: columns) })
            XCTAssertEqual(packed.dequantized().array, grid.dequantized().array, "\(type): packed as the kernels read it")
        }
    }
}
