import Foundation
import JupyterProtocol
import XCTest

final class KernelSpecTests: XCTestCase {
    /// The template in kernelspec/ documents what `sculpt-kernel install` writes; they must agree.
    func testTemplateMatchesWhatInstallWrites() throws {
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardizedFileURL
        let template = try Data(contentsOf: repository.appendingPathComponent("kernelspec/kernel.json"))
        let fromTemplate = try JSONDecoder().decode(KernelSpec.self, from: template)
        XCTAssertEqual(fromTemplate, KernelSpec.sculpt(executable: "@SCULPT_KERNEL@"))
        let written = try JSONDecoder().decode(KernelSpec.self, from: KernelSpec.sculpt(executable: "/opt/x/sculpt-kernel").encoded())
        XCTAssertEqual(written.argv, ["/opt/x/sculpt-kernel", "--connection-file", "{connection_file}"])
        XCTAssertEqual(written.interruptMode, "message")
        XCTAssertEqual(written.displayName, "Sculpt (LLM compression)")
        XCTAssertEqual(written.language, "sculpt")
    }
}
