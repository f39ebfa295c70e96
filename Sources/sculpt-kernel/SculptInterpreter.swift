import Commands
import Display
import Foundation
import JupyterKernel
import JupyterProtocol
import Workbench

/// The seam between the kernel and the command language: code in, values out.
final class SculptInterpreter: Interpreter {
    let session = Session()
    let runner: CellRunner

    init() {
        runner = CellRunner(session: session)
    }

    var kernelInfo: KernelInfo {
        KernelInfo(
            implementation: "sculpt", implementationVersion: SculptVersion.string,
            banner: "Sculpt \(SculptVersion.string): see, in a notebook, what compressing a language model does. Type `help`.",
            languageInfo: [
                "name": "sculpt", "version": .string(SculptVersion.string), "mimetype": "text/x-sculpt",
                "file_extension": ".sculpt",
                // Lines are `verb key=value …` with `#` comments: the "properties" lexer and mode
                // colour keys, values and comments of that shape without a grammar of our own.
                "pygments_lexer": "properties", "codemirror_mode": "properties",
                "nbconvert_exporter": "text",
            ])
    }

    func execute(_ code: String, context: ExecutionContext) -> ExecutionOutcome {
        session.cancellation.reset()
        let output = KernelCommandOutput(context.output)
        do {
            let outcome = try runner.run(code, output: output)
            let pages: [JSONValue] = outcome.pages.map { ["source": "page", "data": .object(Self.jsonData($0)), "start": 0] }
            return .ok(result: outcome.result.map(Self.displayData), payload: pages)
        } catch let error as CommandError {
            return .error(name: error.kind.rawValue, value: error.description, traceback: error.traceback)
        } catch {
            return .error(name: "CommandFailed", value: String(describing: error), traceback: [String(describing: error)])
        }
    }

    func complete(_ code: String, cursor: Int) -> Completion {
        let suggestions = runner.table.complete(code, cursor: cursor)
        return Completion(matches: suggestions.matches, cursorStart: suggestions.start, cursorEnd: suggestions.end,
                          types: suggestions.matches.map { match in
                              let kind = suggestions.kinds[match]
                              return (match, kind?.kind ?? "", kind?.signature ?? "")
                          })
    }

    func inspect(_ code: String, cursor: Int, detailLevel: Int) -> DisplayData? {
        runner.table.inspect(code, cursor: cursor).map(Self.displayData)
    }

    func isComplete(_ code: String) -> CodeCompleteness {
        switch runner.table.completeness(code) {
        case .complete: return .complete
        case .incomplete: return .incomplete(indent: "")
        case .invalid: return .invalid
        }
    }

    func interrupt() {
        session.cancellation.cancel()
    }

    func shutdown(restart: Bool) {
        session.cancellation.cancel()
    }

    static func displayData(_ bundle: MimeBundle) -> DisplayData {
        DisplayData(data: jsonData(bundle), metadata: bundle.metadata.mapValues(jsonValue))
    }

    static func jsonData(_ bundle: MimeBundle) -> [String: JSONValue] {
        bundle.values.mapValues(jsonValue)
    }

    static func jsonValue(_ value: MimeValue) -> JSONValue {
        switch value {
        case .text(let s): return .string(s)
        case .json(let data): return (try? JSONValue.parse(data)) ?? .null
        }
    }
}

/// Command output sent through the kernel's sink.
final class KernelCommandOutput: CommandOutput {
    private let sink: OutputSink

    init(_ sink: OutputSink) { self.sink = sink }

    func print(_ text: String, toStderr: Bool) { sink.stream(text, toStderr: toStderr) }
    func display(_ bundle: MimeBundle, id: String?) { sink.display(SculptInterpreter.displayData(bundle), displayID: id) }
    func update(_ bundle: MimeBundle, id: String) { sink.updateDisplay(SculptInterpreter.displayData(bundle), displayID: id) }
    func clear(wait: Bool) { sink.clearOutput(wait: wait) }
    func input(prompt: String, password: Bool) throws -> String {
        do {
            return try sink.input(prompt: prompt, password: password)
        } catch InputError.cancelled {
            // An interrupt while waiting for the answer: the cell ends as interrupted.
            throw CancellationError()
        }
    }
}

enum SculptVersion {
    static let string = "0.1.0"
}
