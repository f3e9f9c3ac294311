// swift-tools-version:6.0
import PackageDescription

// NSTModel is numerical code: debug Swift is 10-100x slower on its loops, which would make
// `swift test` (a debug build) too slow for the golden and training tests. So NSTModel and
// its C codec are always optimised; everything else keeps the normal debug settings.
// On x86-64 the vector code (SIMD8 transforms, norms, direct convolutions) is compiled for
// AVX2 + FMA (Haswell, 2013, and every later x86-64 CPU); the default target is SSE2 only.
#if arch(x86_64)
let optimised: [SwiftSetting] = [.unsafeFlags(["-Ounchecked", "-target-cpu", "haswell"])]
#else
let optimised: [SwiftSetting] = [.unsafeFlags(["-Ounchecked"])]
#endif

let package = Package(
    name: "nst-orchestrator",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "NSTModel", targets: ["NSTModel"]),
        .library(name: "CoordinatorAPI", targets: ["CoordinatorAPI"]),
        .library(name: "APIClient", targets: ["APIClient"]),
        .library(name: "ConfigFile", targets: ["ConfigFile"]),
        .library(name: "JobStore", targets: ["JobStore"]),
        .library(name: "DatasetPack", targets: ["DatasetPack"]),
        .library(name: "Coordinator", targets: ["Coordinator"]),
        .executable(name: "worker", targets: ["Worker"]),
        .executable(name: "orchestrator", targets: ["orchestrator"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.20.0"),
        .package(url: "https://github.com/apple/swift-crypto", "3.0.0"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.4.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.60.0"),
        .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.30.0"),
        .package(url: "https://github.com/vapor/multipart-kit", from: "4.7.0"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.0.0"),
    ],
    targets: [
        // MARK: - System libraries
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CJPEG", pkgConfig: "libjpeg",
                       providers: [.apt(["libjpeg-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng",
                       providers: [.apt(["libpng-dev"])]),
        // libjpeg and libpng report errors by longjmp; this C target does the setjmp itself
        // so that no longjmp ever crosses a Swift frame.
        .target(name: "CImageCodec", dependencies: ["CJPEG", "CPNG"],
                cSettings: [.unsafeFlags(["-O2"])],
                linkerSettings: [.linkedLibrary("jpeg"), .linkedLibrary("png16")]),

        // Checks the CPU for what NSTModel is compiled for; itself built for the generic target.
        .target(name: "CCPU"),

        // MARK: - Libraries
        .target(name: "NSTModel", dependencies: [
                    "CBLAS", "CImageCodec",
                    .product(name: "ZIPFoundation", package: "ZIPFoundation"),
                ],
                swiftSettings: optimised,
                linkerSettings: [.linkedLibrary("openblas")]),
        // The API's wire types (requests, answers, job configs, loss points), shared by both ends.
        .target(name: "CoordinatorAPI", dependencies: [
            .product(name: "Crypto", package: "swift-crypto"),  // artifacts are named by SHA-256
        ]),
        // The client of that API (CLI and worker), over AsyncHTTPClient.
        .target(name: "APIClient", dependencies: [
            "CoordinatorAPI",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOFoundationCompat", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
        ]),
        // configs/styles.json: checked and resolved into job configs.
        .target(name: "ConfigFile", dependencies: ["CoordinatorAPI", "NSTModel"]),
        // The only module that talks to SQLite.
        .target(name: "JobStore", dependencies: [
            "CoordinatorAPI",
            .product(name: "GRDB", package: "GRDB.swift"),
        ]),
        // Dataset manifests and shards: scan a folder, hash, check decoding, pack, match local files.
        .target(name: "DatasetPack", dependencies: ["NSTModel", "CoordinatorAPI"]),
        // The server: Hummingbird routes, dashboard, metrics, artifact store.
        .target(name: "Coordinator", dependencies: [
            "CoordinatorAPI", "JobStore",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdTLS", package: "hummingbird"),
            .product(name: "MultipartKit", package: "multipart-kit"),  // the try-it page's upload form
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "NIOCore", package: "swift-nio"),
        ]),

        // MARK: - Executables
        // The worker links no server, no database: the model, the wire types, the client, and
        // DatasetPack for the coordinator's datasets (manifests, shards, its download cache).
        .executableTarget(name: "Worker", dependencies: [
            "NSTModel", "CoordinatorAPI", "APIClient", "CCPU", "DatasetPack",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "orchestrator", dependencies: [
            "NSTModel", "CoordinatorAPI", "APIClient", "ConfigFile", "JobStore", "Coordinator", "CCPU", "DatasetPack",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "X509", package: "swift-certificates"),   // tls init
            .product(name: "SwiftASN1", package: "swift-asn1"),
            .product(name: "Crypto", package: "swift-crypto"),
        ]),

        // MARK: - Tests
        .testTarget(name: "NSTModelTests", dependencies: [
                        "NSTModel",
                        .product(name: "ZIPFoundation", package: "ZIPFoundation"),  // hostile .pth archives
                    ],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "CoordinatorAPITests", dependencies: ["CoordinatorAPI"]),
        .testTarget(name: "JobStoreTests", dependencies: ["JobStore"]),
        .testTarget(name: "DatasetPackTests", dependencies: ["DatasetPack", "NSTModel", "CoordinatorAPI"]),
        // A coordinator on a real SQLite file in a temporary state dir, and request helpers,
        // for the server's and the client's tests.
        .target(name: "CoordinatorTestSupport", dependencies: [
                    "Coordinator", "CoordinatorAPI", "JobStore",
                    .product(name: "HummingbirdTesting", package: "hummingbird"),
                    .product(name: "Crypto", package: "swift-crypto"),
                ],
                path: "Tests/CoordinatorTestSupport"),
        .testTarget(name: "CoordinatorTests", dependencies: [
            "Coordinator", "CoordinatorAPI", "JobStore", "CoordinatorTestSupport",
            "APIClient",  // the dashboard and preview tests drive a live server with the real client
            .product(name: "HummingbirdTesting", package: "hummingbird"),
        ]),
        .testTarget(name: "APIClientTests", dependencies: [
            "APIClient", "CoordinatorAPI", "CoordinatorTestSupport",
            .product(name: "HummingbirdTesting", package: "hummingbird"),
        ]),
        .testTarget(name: "ConfigFileTests", dependencies: ["ConfigFile", "CoordinatorAPI", "CoordinatorTestSupport"]),
        .testTarget(name: "EndToEndTests", dependencies: [
            "NSTModel", "CoordinatorAPI", "CoordinatorTestSupport",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),  // HTTPS requests with a private CA
        ]),
    ],
    swiftLanguageModes: [.v5]
)
