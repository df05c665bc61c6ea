"""Lesson 4: GPT architecture."""
import streamlit as st

import ui

ui.page_setup()
ui.lesson_header(4, "GPT architecture", "This lesson is being built.")
