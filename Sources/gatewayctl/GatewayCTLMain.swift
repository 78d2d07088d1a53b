import ArgumentParser
import GatewayCLI

@main
struct GatewayCTLMain {
    static func main() async {
        await GatewayCTL.runMain()
    }
}
