// Gradle project of the kws-kd Android sample app (module :app).
// Needs the Android SDK (compileSdk 35) and Google's Maven repository for the
// Android Gradle plugin and LiteRT; see android_harness/README.md.
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
    }
}

rootProject.name = "kwskd-android"
include(":app")
