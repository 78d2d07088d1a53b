import ArgumentParser
import GatewayCore
import GatewayRuntime
import GatewayStages

@main
struct AutopayWorker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "autopay-worker",
        abstract: "Pays approved withdrawals from the hot wallet: nonce, sign, store, broadcast.",
        discussion: ProcessOptions.discussion)

    @OptionGroup var options: WorkerOptions

    func run() async throws {
        try await StageRunner.run(.autopay, options: options, makeHandlers: AutopayStage.handlers)
    }
}
