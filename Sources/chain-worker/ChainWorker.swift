import ArgumentParser
import GatewayCore
import GatewayRuntime
import GatewayStages

@main
struct ChainWorker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chain-worker",
        abstract: "Chain confirmation polling: scans blocks for deposits, confirms our transactions, handles reorgs.",
        discussion: ProcessOptions.discussion)

    @OptionGroup var options: ProcessOptions

    func run() async throws {
        try await StageRunner.run(.chain, options: options, makeHandlers: ChainStage.handlers)
    }
}
