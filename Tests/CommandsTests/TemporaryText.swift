import Foundation
@testable import Commands
import Workbench
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

extension XCTestCase {
    /// A session with a tiny model (2 layers unless `layers` says) reading `sentence` repeated,
    /// after running `setup` (further lines of a cell): the start of command tests that train or search.
    func tinySession(reading sentence: String, repeated count: Int, layers: Int = 2, then setup: String = "")
        throws -> (session: Session, runner: CellRunner, output: RecordingOutput) {
        let session = Session()
        let runner = CellRunner(session: session)
        let output = RecordingOutput()
        let path = try temporaryText(sentence, repeated: count)
        _ = try runner.run("model tiny layers=\(layers) dim=32 ffn=64 context=128\ndata text \"\(path)\"" + (setup.isEmpty ? "" : "\n" + setup), output: output)
        return (session, runner, output)
    }
}
