package org.kwskd.app.core;

/** A sidecar (FILE.json) the app cannot use; the message names the file and the problem. */
public final class SidecarException extends Exception {
    public SidecarException(String message) {
        super(message);
    }
}
