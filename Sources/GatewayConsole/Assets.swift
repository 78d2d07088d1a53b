/// The console's stylesheet and script (Assets/console.css, Assets/console.js), embedded in the
/// binary by the package manifest (`.embedInCode`).
enum Assets {
    static let css = String(decoding: PackageResources.console_css, as: UTF8.self)
    static let js = String(decoding: PackageResources.console_js, as: UTF8.self)
}
