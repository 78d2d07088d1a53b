import AsyncHTTPClient
import ChainKit
import DevChain
import Foundation
import Logging
import Testing
