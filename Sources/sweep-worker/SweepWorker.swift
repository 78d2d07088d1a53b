import ArgumentParser
import GatewayCore
import GatewayRuntime
import GatewayStages

@main
struct SweepWorker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sweep-worker",
        abstract: "Sweeps deposit addresses into the hot and cold wallets, topping up gas.",
        discussion: ProcessOptions.discussion)

    @OptionGroup var options: WorkerOptions

    func run() async throws {
        try await StageRunner.run(.sweep, options: options, makeParts: SweepStage.parts)
    }
}
