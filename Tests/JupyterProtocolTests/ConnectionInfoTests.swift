import Foundation
import JupyterProtocol
import XCTest

final class ConnectionInfoTests: XCTestCase {
    func write(_ text: String) throws -> String {
        let path = NSTemporaryDirectory() + "sculpt-conn-\(UUID().uuidString).json"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    func testReadsAJupyterClientFile() throws {
        let path = try write("""
        {"shell_port": 5001, "iopub_port": 5002, "stdin_port": 5003, "control_port": 5004, "hb_port": 5005,
         "ip": "127.0.0.1", "key": "k", "transport": "tcp", "signature_scheme": "hmac-sha256", "kernel_name": "sculpt"}
        """)
        let info = try ConnectionInfo.load(path: path)
        XCTAssertEqual(info.controlPort, 5004)
        XCTAssertEqual(info.kernelName, "sculpt")
        XCTAssertEqual(info.endpoint(port: info.shellPort), "tcp://127.0.0.1:5001")
        var ipc = info
        ipc.transport = "ipc"
        ipc.ip = "/tmp/kernel"
        XCTAssertEqual(ipc.endpoint(port: 7), "ipc:///tmp/kernel-7")
    }

    func testMissingFileSaysSo() {
        XCTAssertThrowsError(try ConnectionInfo.load(path: "/nonexistent/conn.json")) {
            XCTAssertTrue("\($0)".contains("no such file"), "\($0)")
        }
    }

    func testMalformedFilesNameTheProblem() throws {
        let cases = [
            ("not json", "not a JSON object"),
            (#"{"transport":"tcp","ip":"127.0.0.1"}"#, "missing"),
            (#"{"shell_port":"x","iopub_port":1,"stdin_port":1,"control_port":1,"hb_port":1,"ip":"a","key":"","transport":"tcp","signature_scheme":"hmac-sha256"}"#, "shell_port"),
            (#"{"shell_port":1,"iopub_port":1,"stdin_port":1,"control_port":1,"hb_port":1,"ip":"a","key":"","transport":"udp","signature_scheme":"hmac-sha256"}"#, "transport"),
            (#"{"shell_port":1,"iopub_port":1,"stdin_port":1,"control_port":1,"hb_port":70000,"ip":"a","key":"","transport":"tcp","signature_scheme":"hmac-sha256"}"#, "hb_port"),
        ]
        for (text, expected) in cases {
            let path = try write(text)
            XCTAssertThrowsError(try ConnectionInfo.load(path: path), text) {
                XCTAssertTrue("\($0)".contains(expected), "\($0) should mention \(expected)")
            }
        }
    }
}
