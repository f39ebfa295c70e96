import Foundation
import XCTest

extension XCTestCase {
    /// A text file of `sentence` repeated, removed when the test ends: the `data text PATH` of
    /// command tests that need some text but not Austen.
    func temporaryText(_ sentence: String, repeated count: Int) throws -> String {
        let path = NSTemporaryDirectory() + "sculpt-text-\(UUID().uuidString).txt"
        try String(repeating: sentence, count: count).write(toFile: path, atomically: true, encoding: .utf8)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }
}
