import Foundation
import JupyterProtocol

/// A rich output: MIME type → value (strings for text and base64 images, JSON for `*/json`).
public struct DisplayData: Sendable, Equatable {
    public var data: [String: JSONValue]
    public var metadata: [String: JSONValue]

    public init(data: [String: JSONValue], metadata: [String: JSONValue] = [:]) {
        self.data = data
        self.metadata = metadata
    }

    public static func plainText(_ text: String) -> DisplayData {
        DisplayData(data: ["text/plain": .string(text)])
    }
}

/// How an execution ended.
public enum ExecutionOutcome: Sendable {
    /// Success, with an optional `execute_result` and optional payloads (e.g. the pager).
    case ok(result: DisplayData?, payload: [JSONValue])
    /// Failure: one `error` output and an error reply.
    case error(name: String, value: String, traceback: [String])

    public static let ok = ExecutionOutcome.ok(result: nil, payload: [])
}

/// Completions for the text before the cursor, as `complete_reply` carries them.
public struct Completion: Sendable {
    public var matches: [String]
    /// Code-point offsets of the text the matches replace.
    public var cursorStart: Int
    public var cursorEnd: Int
    /// Per-match type and signature, sent as `_jupyter_types_experimental`.
    public var types: [(text: String, type: String, signature: String)]

    public init(matches: [String], cursorStart: Int, cursorEnd: Int,
                types: [(text: String, type: String, signature: String)] = []) {
        self.matches = matches
        self.cursorStart = cursorStart
        self.cursorEnd = cursorEnd
        self.types = types
    }
}

/// The answer to is_complete.
public enum CodeCompleteness: Sendable, Equatable {
    case complete
    case incomplete(indent: String)
    case invalid
    case unknown
}

/// What kernel_info_reply says about the language and the implementation.
public struct KernelInfo: Sendable {
    public var implementation: String
    public var implementationVersion: String
    public var banner: String
    public var languageInfo: JSONValue
    public var helpLinks: [(text: String, url: String)]

    public init(implementation: String, implementationVersion: String, banner: String,
                languageInfo: JSONValue, helpLinks: [(text: String, url: String)] = []) {
        self.implementation = implementation
        self.implementationVersion = implementationVersion
        self.banner = banner
        self.languageInfo = languageInfo
        self.helpLinks = helpLinks
    }
}

/// Why reading from the frontend failed.
public enum InputError: Error, CustomStringConvertible {
    /// The frontend did not allow stdin for this execution.
    case notAllowed
    /// The kernel is shutting down or the execution was interrupted while waiting.
    case cancelled

    public var description: String {
        switch self {
        case .notAllowed: return "this frontend does not accept input requests (allow_stdin is false)"
        case .cancelled: return "input was cancelled"
        }
    }
}

/// Where an execution sends its outputs. Stream text is batched (about 100 ms or 8 KiB);
/// every other output first flushes pending stream text, so the order is kept.
public protocol OutputSink: AnyObject {
    func stream(_ text: String, toStderr: Bool)
    func display(_ data: DisplayData, displayID: String?)
    func updateDisplay(_ data: DisplayData, displayID: String)
    func clearOutput(wait: Bool)
    /// Asks the frontend for a line of input; throws `InputError.notAllowed` when it cannot.
    func input(prompt: String, password: Bool) throws -> String
}

/// The request an execution runs for.
public struct ExecutionContext {
    public let executionCount: Int
    public let silent: Bool
    public let allowStdin: Bool
    public let output: OutputSink
}

/// The language side of the kernel, in the manner of xeus: the kernel owns counters, history
/// and publishing; the interpreter sees code and returns values. All methods but `interrupt`
/// are called on the kernel's one worker thread, in order.
public protocol Interpreter: AnyObject {
    var kernelInfo: KernelInfo { get }
    func execute(_ code: String, context: ExecutionContext) -> ExecutionOutcome
    /// `cursor` counts Unicode code points (protocol 5.2).
    func complete(_ code: String, cursor: Int) -> Completion
    /// The help for what is at the cursor, or nil when there is nothing to show.
    func inspect(_ code: String, cursor: Int, detailLevel: Int) -> DisplayData?
    func isComplete(_ code: String) -> CodeCompleteness
    /// Called from the control thread: ask the running execution to stop at its next checkpoint.
    func interrupt()
    /// Called once before the kernel exits.
    func shutdown(restart: Bool)
}
