import ArgumentParser
import Commands
import Display
import Foundation
import JupyterKernel
import JupyterProtocol
import Logging
import Workbench

@main
struct SculptKernelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sculpt-kernel",
        abstract: "Sculpt: a Jupyter kernel for seeing what compressing a language model does.",
        discussion: "Started by Jupyter as `sculpt-kernel --connection-file FILE`.",
        subcommands: [Install.self, Repl.self, Bench.self])

    @Option(name: .customLong("connection-file"), help: "The connection file a Jupyter client wrote.")
    var connectionFile: String?

    @Option(name: .customLong("max-message-bytes"), help: "Drop incoming messages larger than this (bytes).")
    var maxMessageBytes = WireCodec.defaultMaximumBytes

    func run() throws {
        guard let connectionFile else {
            throw ValidationError("missing --connection-file (or use `install` or `repl`; see --help)")
        }
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        var logger = Logger(label: "sculpt.kernel")
        logger.logLevel = ProcessInfo.processInfo.environment["SCULPT_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .notice

        let connection: ConnectionInfo
        do {
            connection = try ConnectionInfo.load(path: connectionFile)
        } catch {
            FileHandle.standardError.write(Data("sculpt-kernel: \(error)\n".utf8))
            throw ExitCode(2)
        }
        let transport: ZeroMQTransport
        do {
            transport = try ZeroMQTransport(connection: connection)
        } catch {
            FileHandle.standardError.write(Data("sculpt-kernel: cannot bind the kernel's sockets: \(error)\n".utf8))
            throw ExitCode(3)
        }
        let kernel = Kernel(transport: transport, key: connection.key, interpreter: SculptInterpreter(),
                            maximumMessageBytes: maxMessageBytes, logger: logger)

        // SIGINT never kills the kernel: it interrupts the running command, like interrupt_request.
        signal(SIGINT, SIG_IGN)
        let interrupts = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        interrupts.setEventHandler { kernel.interrupt() }
        interrupts.resume()

        kernel.run()
        interrupts.cancel()
    }
}

struct Install: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Install the kernelspec so Jupyter clients can start Sculpt.",
        discussion: "Default: the user's Jupyter data directory (~/.local/share/jupyter/kernels/sculpt).")

    @Flag(help: "Install for this user (the default).")
    var user = false

    @Option(help: "Install under PREFIX/share/jupyter/kernels/sculpt.")
    var prefix: String?

    @Option(name: .customLong("jupyter-path"), help: "Install under PATH/kernels/sculpt (a directory on JUPYTER_PATH).")
    var jupyterPath: String?

    @Option(help: "The kernelspec name.")
    var name = "sculpt"

    @Option(help: "The folder with the logos (default: the repository's kernelspec/ beside .build/).")
    var resources: String?

    func validate() throws {
        if prefix != nil && jupyterPath != nil { throw ValidationError("give at most one of --prefix and --jupyter-path") }
        guard name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-._".contains($0)) }) else {
            throw ValidationError("a kernelspec name may contain ASCII letters, digits, '-', '.' and '_'")
        }
    }

    func run() throws {
        let base: URL
        if let jupyterPath {
            base = URL(fileURLWithPath: jupyterPath).appendingPathComponent("kernels")
        } else if let prefix {
            base = URL(fileURLWithPath: prefix).appendingPathComponent("share/jupyter/kernels")
        } else {
            let data = ProcessInfo.processInfo.environment["JUPYTER_DATA_DIR"]
                ?? (NSHomeDirectory() + "/.local/share/jupyter")
            base = URL(fileURLWithPath: data).appendingPathComponent("kernels")
        }
        let directory = base.appendingPathComponent(name.lowercased())
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)

        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().path
        let absolute = executable.hasPrefix("/") ? executable
            : FileManager.default.currentDirectoryPath + "/" + executable
        try KernelSpec.sculpt(executable: URL(fileURLWithPath: absolute).standardizedFileURL.path).encoded()
            .write(to: directory.appendingPathComponent("kernel.json"))
        let logos = ["logo-32x32.png", "logo-64x64.png", "logo-svg.svg"]
        // The binary lives somewhere under <repo>/.build/; the logos in <repo>/kernelspec/.
        let source = resources.map { URL(fileURLWithPath: $0) } ?? Self.repositoryKernelspec(above: absolute)
        for logo in logos {
            let from = source.appendingPathComponent(logo)
            let to = directory.appendingPathComponent(logo)
            guard FileManager.default.fileExists(atPath: from.path) else {
                FileHandle.standardError.write(Data("sculpt-kernel install: no \(logo) in \(source.path); installing without it\n".utf8))
                continue
            }
            try? FileManager.default.removeItem(at: to)
            try FileManager.default.copyItem(at: from, to: to)
        }
        print("installed kernelspec \(name.lowercased()) in \(directory.path)")
    }
}

extension Install {
    static func repositoryKernelspec(above executable: String) -> URL {
        var directory = URL(fileURLWithPath: executable).deletingLastPathComponent()
        while directory.path != "/" {
            let candidate = directory.appendingPathComponent("kernelspec")
            if FileManager.default.fileExists(atPath: candidate.appendingPathComponent("logo-svg.svg").path) { return candidate }
            directory.deleteLastPathComponent()
        }
        return URL(fileURLWithPath: "kernelspec")
    }
}

struct Repl: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A terminal session over the same commands as the notebook kernel.")

    func run() throws {
        let session = Session()
        let runner = CellRunner(session: session)
        let output = TerminalOutput()
        signal(SIGINT, SIG_IGN)
        let interrupts = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        interrupts.setEventHandler { session.cancellation.cancel() }
        interrupts.resume()
        let interactive = isatty(0) != 0
        if interactive { print("Sculpt \(SculptVersion.string). Type `help`; Ctrl-D quits.") }
        var cell = ""
        while true {
            if interactive {
                Swift.print(cell.isEmpty ? "sculpt> " : "   ...> ", terminator: "")
                fflush(stdout)
            }
            guard let line = readLine() else { break }
            cell += cell.isEmpty ? line : "\n" + line
            if runner.table.completeness(cell) == .incomplete { continue }
            session.cancellation.reset()
            do {
                let outcome = try runner.run(cell, output: output)
                output.finishCell()
                for page in outcome.pages { print(page.plainText) }
                if let result = outcome.result { print(result.plainText) }
            } catch let error as CommandError {
                output.finishCell()
                FileHandle.standardError.write(Data((error.traceback.joined(separator: "\n") + "\n").utf8))
            }
            // Piped into a file, stdout is block-buffered: show each cell's output as it ends.
            fflush(stdout)
            cell = ""
        }
    }
}

/// REPL output: text as is, rich outputs by their plain-text form. On a terminal an updated
/// display is redrawn in place (one line); piped, only its last state is printed, when the cell ends.
final class TerminalOutput: CommandOutput {
    private let interactive = isatty(1) != 0
    private var pendingUpdates = [(id: String, text: String)]()

    func print(_ text: String, toStderr: Bool) {
        // Through stdio like the rest of the REPL's output, so the order holds when piped.
        fputs(text, toStderr ? stderr : stdout)
        fflush(toStderr ? stderr : stdout)
    }

    func display(_ bundle: MimeBundle, id: String?) {
        if id != nil && !interactive { pendingUpdates.append((id!, bundle.plainText)); return }
        Swift.print(bundle.plainText, terminator: id != nil && !bundle.plainText.contains("\n") ? "" : "\n")
        fflush(stdout)
    }

    func update(_ bundle: MimeBundle, id: String) {
        guard interactive else {
            if let index = pendingUpdates.firstIndex(where: { $0.id == id }) { pendingUpdates[index].text = bundle.plainText } else { pendingUpdates.append((id, bundle.plainText)) }
            return
        }
        if bundle.plainText.contains("\n") {
            Swift.print(bundle.plainText)
        } else {
            Swift.print("\r\u{1b}[K" + bundle.plainText, terminator: "")
        }
        fflush(stdout)
    }

    /// Ends the cell: the last state of every updated display, each on its own line.
    func finishCell() {
        if interactive {
            Swift.print("")
        } else {
            for update in pendingUpdates { Swift.print(update.text) }
        }
        pendingUpdates.removeAll()
        fflush(stdout)
    }

    func clear(wait: Bool) {}
    func input(prompt: String, password: Bool) throws -> String {
        Swift.print(prompt, terminator: "")
        fflush(stdout)
        guard let line = readLine() else { throw InputError.cancelled }
        return line
    }
}
