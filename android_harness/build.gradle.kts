// AGP 8.7.x: Gradle >= 8.9, JDK 17, compileSdk up to 35.
plugins {
    id("com.android.application") version "8.7.3" apply false
}
