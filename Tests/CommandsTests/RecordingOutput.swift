import Commands
import Display
import Foundation
import Workbench

/// Collects what commands show, in order.
class RecordingOutput: CommandOutput {
    enum Event: Equatable {
        case text(String, stderr: Bool)
        case display(MimeBundle, id: String?)
        case update(MimeBundle, id: String)
        case clear(wait: Bool)
    }

    struct NoStdin: Error {}

    var events = [Event]()
    /// Answers for `input`; nil means the frontend cannot answer prompts.
    var answers: [String]?
    var prompts = [String]()

    func print(_ text: String, toStderr: Bool) { events.append(.text(text, stderr: toStderr)) }
    func display(_ bundle: MimeBundle, id: String?) { events.append(.display(bundle, id: id)) }
    func update(_ bundle: MimeBundle, id: String) { events.append(.update(bundle, id: id)) }
    func clear(wait: Bool) { events.append(.clear(wait: wait)) }
    func input(prompt: String, password: Bool) throws -> String {
        prompts.append(prompt)
        guard var answers, !answers.isEmpty else { throw NoStdin() }
        let answer = answers.removeFirst()
        self.answers = answers
        return answer
    }

    var stdout: String {
        events.compactMap { if case .text(let t, false) = $0 { return t } else { return nil } }.joined()
    }
}

/// Records like `RecordingOutput` and cancels the session's work at the first progress update:
/// an interrupt that lands while the work runs, on a fast machine or a slow one.
final class CancellingOutput: RecordingOutput {
    let cancellation: CancellationToken

    init(cancellation: CancellationToken) { self.cancellation = cancellation }

    override func update(_ bundle: MimeBundle, id: String) {
        super.update(bundle, id: id)
        cancellation.cancel()
    }
}
