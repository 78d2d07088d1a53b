import ArgumentParser
import GatewayCore
import GatewayRuntime
import GatewayStages

@main
struct CallbackWorker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "callback-worker",
        abstract: "Delivers signed callbacks to merchants with exponential backoff.",
        discussion: ProcessOptions.discussion)

    @OptionGroup var options: WorkerOptions

    func run() async throws {
        try await StageRunner.run(.callback, options: options, makeParts: CallbackStage.parts)
    }
}
