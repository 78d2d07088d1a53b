import ArgumentParser
import GatewayCore
import GatewayRuntime
import GatewayStages

@main
struct ReviewWorker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "review-worker",
        abstract: "Applies review rules to new withdrawals and escalates reviews past their SLA.",
        discussion: ProcessOptions.discussion)

    @OptionGroup var options: WorkerOptions

    func run() async throws {
        try await StageRunner.run(.review, options: options, makeHandlers: ReviewStage.handlers)
    }
}
