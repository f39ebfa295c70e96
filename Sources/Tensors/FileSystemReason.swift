import Foundation

/// The short reason behind a Foundation file error ("Permission denied", "No such file or
/// directory"), taken from its POSIX error where there is one, instead of the raw
/// `NSCocoaErrorDomain` dump that users cannot act on.
public func fileSystemReason(_ error: Error) -> String {
    let nsError = error as NSError
    if let underlying = nsError.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
        return String(cString: strerror(Int32(underlying.code)))
    }
    if nsError.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(nsError.code))) }
    switch nsError.code {
    case NSFileWriteFileExistsError: return "a file of that name is in the way"
    case NSFileNoSuchFileError, NSFileReadNoSuchFileError: return "no such file or directory"
    case NSFileWriteNoPermissionError, NSFileReadNoPermissionError: return "permission denied"
    case NSFileWriteOutOfSpaceError: return "no space left on the device"
    default: return nsError.localizedDescription
    }
}
