import ArgumentParser
import GatewayAPI
import GatewayRuntime

@main
struct GatewayAPIMain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gateway-api",
        abstract: "Serves the merchant Open API (/mch/*), the admin API (/admin/*), /metrics and /healthz.",
        discussion: ProcessOptions.discussion)

    @OptionGroup var options: ProcessOptions

    func run() async throws {
        try await runGatewayAPI(options: options)
    }
}
